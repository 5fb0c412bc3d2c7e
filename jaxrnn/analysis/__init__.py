"""Analysis of trained networks, written for one network and vmapped over populations.

Entry points:

    fps = find_fixed_points(step, x0[K,N], u[M], method="lm" | "adam", tol=1e-8)
    J_rec, J_inp = jacobian(step, x[N], u[M]);  tau = timescales(eigvals)
    d = svcca(X, Y, variance=0.95); d = cka(X, Y); d = procrustes(X, Y)
    D = pairwise(metric, Xs[K,S,N]);  Y2 = mds(D, dims=2);  s = silhouette(D, labels)
    P = joint_matrix(A, B, C, W_in, W_rec, W_out, alpha=1.0)
    P_eff = reduced_system(s_zm, s_zu, s_vm, s_vu)
    k = feedback_gains(states[S,2], controls[S]);  K = lqr(A, B, Q, R)
    net = load_network(run_dir, member);  states, outputs = net.run(inputs[B,T,M])   # a stored member

Studies' pipelines: ``jaxrnn.analysis.pipeline`` (McMahan et al., ``jaxrnn analyze``),
``jaxrnn.analysis.policy`` (Huang et al.), ``closed_loop`` / ``control`` / ``stages`` (Ger & Barak).
"""

from jaxrnn.analysis.closed_loop import joint_matrix, reduced_system, spectral_radius, stabilisation_epoch
from jaxrnn.analysis.control import feedback_gains, lqr
from jaxrnn.analysis.embedding import mds, silhouette
from jaxrnn.analysis.fixed_point_inputs import probe_inputs, sample_states
from jaxrnn.analysis.fixed_points import FixedPoints, find_fixed_points, find_fixed_points_population
from jaxrnn.analysis.linearize import jacobian, jacobians, spectrum, timescales
from jaxrnn.analysis.probes import integration_probe, integration_probe_population
from jaxrnn.analysis.similarity import cka, pairwise, procrustes, svcca
from jaxrnn.analysis.stored_networks import StoredNetwork, load_network
from jaxrnn.analysis.topology import index_profile, topology_distances, topology_signature

__all__ = [
    "FixedPoints",
    "StoredNetwork",
    "cka",
    "feedback_gains",
    "find_fixed_points",
    "find_fixed_points_population",
    "index_profile",
    "integration_probe",
    "integration_probe_population",
    "jacobian",
    "jacobians",
    "joint_matrix",
    "load_network",
    "lqr",
    "mds",
    "pairwise",
    "probe_inputs",
    "procrustes",
    "reduced_system",
    "sample_states",
    "silhouette",
    "spectral_radius",
    "spectrum",
    "stabilisation_epoch",
    "svcca",
    "timescales",
    "topology_distances",
    "topology_signature",
]
