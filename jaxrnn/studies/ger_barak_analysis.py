"""Analyses of the Ger & Barak (NeurIPS 2025) reproduction: stored snapshots → numbers.

Everything here reads a run's results store (``jaxrnn.population.run``) or the params taken from
it and returns NumPy arrays; :mod:`jaxrnn.studies.ger_barak` trains the runs and
:mod:`jaxrnn.studies.ger_barak_figures` draws. The models and the plant are the authors'
(``code/utils.py`` and the notebooks of github.com/yoavger/closed_loop_rnn_learning_dynamics):

- ``NONLINEAR_MODEL``: the authors' tanh controller, ``r_t = tanh(W_rec r_{t−1} + W_in y_t)``,
  ``u_t = W_out r_t`` (N = 100, g = 0.1, no bias).
- ``RANK1_MODEL``: their rank-1 linear model (``P_Model``), ``W = u vᵀ``, input vector ``m`` frozen.
- ``TRACKING_MODEL``: linear CTRNN (α = 0.1, g = 0.2) for the 2-D tracking task.

Per-snapshot analyses are vmapped over the snapshot axis and jitted once per model.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from threadpoolctl import threadpool_limits

import jaxrnn
from jaxrnn import population
from jaxrnn.analysis import closed_loop as cl
from jaxrnn.analysis import control as ct
from jaxrnn.analysis.stages import learning_stages
from jaxrnn.models import low_rank_factors, recurrent_matrix
from jaxrnn.population.builders import build_cell
from jaxrnn.rules.closed_loop import closed_loop
from jaxrnn.rules.controller import (Episodes, controller_step, default_readout, initial_carry, plant_rollouts,
                                     sample_episodes, tracking_rollout)

HIDDEN, MAIN_T, MAIN_REG_U = 100, 50, 0.005
PLANT, PLANT_PARAMS = jaxrnn.make("double-integrator")
A, B, C = (np.asarray(m, np.float64) for m in PLANT.matrices(PLANT_PARAMS))
TRACKING, TRACKING_PARAMS = jaxrnn.make("tracking-2d")
TEST_KEY = jax.random.PRNGKey(2025)  # the 10 test initial states ~ U(−1, 1)² (train_non_linear nb)
NONLINEAR_MODEL = {"cell": "ctrnn", "hidden": HIDDEN, "activation": "tanh", "alpha": 1.0,
                   "weight_init": "ger_barak", "output": "rate", "use_bias": False, "gain": 0.1}
TRACKING_MODEL = {"cell": "ctrnn", "hidden": HIDDEN, "activation": "linear", "alpha": 0.1, "weight_init": "uniform",
                  "input_scale": float(1.0 / np.sqrt(HIDDEN)), "output": "rate", "use_bias": False, "gain": 0.2}
RANK1_MODEL = {"cell": "lowrank", "hidden": HIDDEN, "rank": 1, "alpha": 1.0, "activation": "linear",
               "output": "state", "use_bias": False, "parametrization": "ger_barak", "gain": 1.0}


def model_cell(model: dict):
    """The cell a ``[model]`` table builds (defaults filled in as ``from_dict`` does)."""
    return build_cell({**dataclasses.asdict(population.ModelConfig()), **model})


def snapshot_params(ds, member: int) -> dict:
    """The member's ``{"cell", "readout"}`` params with a leading snapshot axis, from the store.

    NumPy arrays: the jitted analyses take them as they are, and slicing out a snapshot or a range
    of them compiles nothing (on ``jax.Array`` leaves each new slice shape is an XLA program).
    """
    tree: dict = {}
    for name in ds.data_vars:
        if name.startswith("params."):
            module, leaf = name.split(".")[1:]
            tree.setdefault(module, {"params": {}})["params"][leaf] = np.asarray(ds[name].values[member])
    return tree


def member_index(ds, seed: int, reg_u: float | None = None) -> int:
    """Index of the member with ``seed`` (and ``rule.reg_u``) in a store."""
    mask = ds.seed.values == seed
    if reg_u is not None:
        mask &= np.isclose(ds["rule.reg_u"].values.astype(float), reg_u)
    return int(np.flatnonzero(mask)[0])


# ----------------------------------------------------------------------------- double integrator


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def integrator_rollouts(cell, readout, params, x0s, T: int = MAIN_T):
    """Closed-loop rollouts of one controller from ``x0s[K, 2]``: ``states[K, T, 2]``, ``controls[K, T]``."""
    episodes = Episodes(x0s, None, jax.random.split(TEST_KEY, x0s.shape[0]))
    policy = lambda h, y: (*controller_step(cell, readout, params, h, y), ())  # noqa: E731
    xs, us, _ = plant_rollouts(PLANT, policy, initial_carry(cell, 1), episodes, PLANT_PARAMS, T)
    return xs, us[..., 0]


@functools.partial(jax.jit, static_argnums=(0, 1))
def gains_and_cost(cell, readout, params):
    """Per snapshot: effective gains ``k[S, 2]`` (``u ≈ k1 x + k2 v``, least squares over t ≥ 1,
    as the authors' ``LinearRegression(fit_intercept=False)``) and the closed-loop test cost ``[S]``
    (``Σ_t mean x²``, T = 50, reg 0) from the 10 fixed test initial states — the same states for
    every snapshot and every run."""
    x0s = sample_episodes(TEST_KEY, PLANT, PLANT_PARAMS, 10).x0

    def one(p):
        xs, us = integrator_rollouts(cell, readout, p, x0s)
        return ct.feedback_gains_from_rollouts(xs, us, drop=1), jnp.sum(jnp.mean(xs**2, axis=(0, 2)))

    return jax.vmap(one)(params)


def joint_matrices(W_in, W_rec, W_out) -> np.ndarray:
    """Joint maps ``P[S, 2 + N, 2 + N]`` of stacked controllers on the double integrator, float64 NumPy.

    The α = 1 case of :func:`jaxrnn.analysis.closed_loop.joint_matrix` (for a tanh controller its
    linearisation at h = 0): ``[[A, B W_out], [W_in C A, W_in C B W_out + W_rec]]``. NumPy because
    the spectra of a thousand stored snapshots are one LAPACK call each, with no compilation.
    """
    W_in, W_rec, W_out = (np.asarray(a, np.float64) for a in (W_in, W_rec, W_out))
    S, N = W_rec.shape[:2]
    P = np.zeros((S, 2 + N, 2 + N))
    P[:, :2, :2] = A
    P[:, :2, 2:] = B @ W_out
    P[:, 2:, :2] = W_in @ (C @ A)
    P[:, 2:, 2:] = W_in @ (C @ B) @ W_out + W_rec
    return P


def eigvals(M) -> np.ndarray:
    """``np.linalg.eigvals`` of ``M[..., n, n]`` in float64, with one BLAS thread.

    Stacks of small eigenproblems gain nothing from OpenBLAS's threads, and on a busy machine their
    spin-waiting makes them 50x slower: 50 matrices of 102 x 102 took 24.7 s with 2 threads and
    0.46 s with one (2-core machine at load 8, 2026-12-03).
    """
    with threadpool_limits(1, user_api="blas"):
        return np.linalg.eigvals(np.asarray(M, np.float64))


def sorted_eigvals(M) -> np.ndarray:
    """Eigenvalues of ``M[..., n, n]`` sorted by modulus, descending (NumPy, float64)."""
    eig = eigvals(M)
    return np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=-1), axis=-1)


def joint_radii(params) -> np.ndarray:
    """``ρ(P)`` per snapshot of a CTRNN controller (P at h = 0, the authors' ``create_p_matrix_from_rnn``)."""
    p = params["cell"]["params"]
    P = joint_matrices(p["W_in"], p["W_rec"], params["readout"]["params"]["W_out"])
    return np.abs(eigvals(P)).max(-1)


def entry_update(gains) -> int:
    """First snapshot after which the gains stay in the closed-form stable region (−1 if never)."""
    stable = np.asarray(ct.stability_map(gains[:, 0], gains[:, 1])) == 2
    if not stable[-1]:
        return -1
    unstable = np.flatnonzero(~stable)
    return int(unstable[-1] + 1) if unstable.size else 0


def nonlinear_analysis(ds, member: int, cell, readout) -> dict:
    """Gains, test cost, ρ(P) and stages of one closed-loop (or open-loop) member of a store."""
    params = snapshot_params(ds, member)
    gains, cost = (np.asarray(a) for a in gains_and_cost(cell, readout, params))
    radii = joint_radii(params)
    E = ds.sizes["update"]  # the loss of update u is that of snapshot u (its params before the update)
    return {"params": params, "gains": gains, "test_cost": cost, "radii": radii, "loss": ds.loss.values[member],
            "stages": learning_stages(ds.loss.values[member], radii[:E]), "entry": entry_update(gains)}


# ----------------------------------------------------------------------------- rank-1 model


@jax.jit
def _rank1_matrices(cell_params):
    """``W = u vᵀ`` of each rank-1 snapshot, ``[S, N, N]``."""
    return jax.vmap(functools.partial(recurrent_matrix, model_cell(RANK1_MODEL)))(cell_params)


def rank1_overlaps(params) -> np.ndarray:
    """``[σ_zm, σ_zu, σ_vm, σ_vu]`` per snapshot, ``[S, 4]`` (float64)."""
    return np.asarray(_rank1_overlaps(params), np.float64)


@jax.jit
def _rank1_overlaps(params):
    """One program per snapshot count (op by op it was a dozen; same float32 results, bit for bit)."""
    u, v = jax.vmap(functools.partial(low_rank_factors, model_cell(RANK1_MODEL)))(params["cell"])
    m, z = params["cell"]["params"]["W_in"][..., 0], params["readout"]["params"]["W_out"][:, 0]
    return cl.overlaps_batched(m, z, u[..., 0], v[..., 0])


def rank1_spectrum(sig) -> np.ndarray:
    """Eigenvalues ``[S, 4]`` of the reduced map (= the nonzero spectrum of the joint P, App. C.4)."""
    with jax.enable_x64(True):
        return sorted_eigvals(np.asarray(_reduced_system(*np.asarray(sig, np.float64).T)))


_reduced_system = jax.jit(cl.reduced_system)  # only stacks its inputs: one program instead of one per op


def rank1_analysis(ds, member: int = 0) -> dict:
    """Overlaps, spectrum and stages of a rank-1 run."""
    params = snapshot_params(ds, member)
    sig = rank1_overlaps(params)
    eigs = rank1_spectrum(sig)
    E = ds.sizes["update"]
    loss = ds.loss.values[member]
    return {"params": params, "sig": sig, "eigs": eigs, "loss": loss,
            "stages": learning_stages(loss, np.abs(eigs[:E, 0]))}


def pair_eigenvalue(eigs) -> np.ndarray:
    """The upper member of the complex pair among the 3 leading eigenvalues (the dominant one if all real)."""
    top = eigs[:, :3]
    pick = np.where(np.abs(top.imag).max(1) > 1e-9, np.argmax(top.imag, 1), 0)
    return top[np.arange(len(top)), pick]


def third_eigenvalue(eigs, s_vu):
    """``(λ3, |λ1|)``: λ3 the real root outside the complex pair (all real: the one nearest σ_vu)."""
    top = eigs[:, :3]
    real = np.abs(top.imag) <= 1e-6 * np.maximum(np.abs(top), 1e-12)
    pick = np.where(real.all(1), np.argmin(np.abs(top - s_vu[:, None]), 1), np.argmax(real, 1))
    others = np.where(np.arange(3)[None] == pick[:, None], 0.0, np.abs(top))
    return top[np.arange(len(top)), pick].real, others.max(1)


def rank1_rule(num_steps: int, batch: int = 100):
    """The closed-loop rule of the authors' rank-1 model (SGD; ``m`` frozen), scanning ``num_steps``."""
    cell = model_cell(RANK1_MODEL)
    return closed_loop(cell, PLANT, batch=batch, num_steps=num_steps, optimizer="sgd",
                       trainable=("U", "V", "W_out"))


def rank1_hparams(rule, T):
    """The authors' SGD 0.01 and clip 1 on their T-mean loss (this rule sums: lr 0.01/T, clip T)."""
    T = jnp.asarray(T, jnp.float32)
    task = PLANT_PARAMS.replace(init_half_width=jnp.float32(2.0), max_steps_in_episode=T.astype(jnp.int32))
    return rule.default_hparams.replace(learning_rate=0.01 / T, max_grad_norm=T, reg_u=jnp.float32(0.0), task=task)


def episode_length_sweep(params0, Ts, num_updates: int, seed: int = 0, batch: int = 100) -> np.ndarray:
    """Fig. 4e: train copies of one rank-1 network with episode lengths ``Ts``; eigenvalues per update.

    All copies start from ``params0`` (one snapshot, e.g. mid stage 2 of the T = 50 run) and see
    the same initial-state draws (``PRNGKey(seed)``, ``batch`` per update, the authors' 100); the T
    values run as one vmapped program. Returns the reduced map's spectrum
    ``[len(Ts), num_updates + 1, 4]``.
    """
    rule = rank1_rule(int(max(Ts)), batch)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_updates)

    def train(T, params0):
        hp = rank1_hparams(rule, T)
        state = rule.init(jax.random.PRNGKey(0), hp).replace(params=params0)

        def body(state, key):
            state, _ = rule.update(key, state, hp)
            return state, rule.network(state)

        _, path = jax.lax.scan(body, state, keys)
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), params0, path)

    paths = jax.jit(jax.vmap(train, in_axes=(0, None)))(jnp.asarray(Ts, jnp.float32), params0)
    paths = jax.tree.map(np.asarray, paths)
    return np.stack([rank1_spectrum(rank1_overlaps(jax.tree.map(lambda a: a[i], paths))) for i in range(len(Ts))])


def stage1_cost(P, T: int = 101) -> np.ndarray:
    """``Σ_{t<T} ½‖x_t‖²`` of ``s_{t+1} = P s_t`` from ``x0 = (1, −1)``, ``h0 = 0`` (theory nb cell 4),
    for joint maps ``P[K, d, d]`` whose first two coordinates are the plant's; float64 NumPy."""
    P = np.asarray(P, np.float64)
    s = np.zeros(P.shape[:2])
    s[:, 0], s[:, 1] = 1.0, -1.0
    total = np.zeros(P.shape[0])
    for _ in range(T):
        total += 0.5 * np.sum(s[:, :2] ** 2, axis=1)
        s = np.einsum("kij,kj->ki", P, s)
    return total


def stage1_curves(sig_zm, T: int = 101):
    """Fig. 3: the stage-1 loss as a function of σ_zm, ``(rollout, closed_form)``, both ``[K]``.

    ``rollout``: :func:`stage1_cost` of the reduced system with ``σ_zu = σ_vm = σ_vu = 0``
    (``reduced_system(σ_zm, 0, 0, 0)``). ``closed_form``: the paper's own approximation
    (App. C.5, theory nb cell 4), :func:`~jaxrnn.analysis.closed_loop.stage1_loss`
    ``½(1 − r^T)/(1 − r)``, ``r = |1 + √σ_zm|²``.
    """
    grid = np.atleast_1d(np.asarray(sig_zm, np.float64))
    with jax.enable_x64(True):
        reduced, closed_form = (np.asarray(a) for a in _stage1_maps(jnp.asarray(grid), T))
    return stage1_cost(reduced, T), closed_form


@functools.partial(jax.jit, static_argnums=1)
def _stage1_maps(grid, T: int):
    """``reduced_system(σ_zm, 0, 0, 0)`` and the closed form on ``grid``, as one program."""
    zero = jnp.zeros_like(grid)
    return cl.reduced_system(grid, zero, zero, zero), cl.stage1_loss(grid, T)


def trained_stage1_cost(params, T: int = 101) -> np.ndarray:
    """The same stage-1 rollout cost for the full joint map of each rank-1 snapshot in ``params``."""
    W_rec = np.asarray(_rank1_matrices(params["cell"]))
    return stage1_cost(joint_matrices(params["cell"]["params"]["W_in"], W_rec, params["readout"]["params"]["W_out"]),
                       T)


def stage1_comparison(r1: dict, grid=np.linspace(-0.3, 0.12, 211)) -> dict:
    """Fig. 3 numbers: curves on ``grid``, and the closed form's relative error ``|cf − rollout| / rollout``
    on the grid and at the σ_zm of the rank-1 run's unstable snapshots (stages 1–2)."""
    st = r1["stages"]
    end = st.stage3_start if st.stage3_start > 0 else len(r1["loss"])
    sig = r1["sig"][:end, 0]
    rollout, closed_form = stage1_curves(grid)
    at_rollout, at_closed = stage1_curves(sig)
    params = jax.tree.map(lambda x: x[:end], r1["params"])
    return {"grid": grid, "rollout": rollout, "closed_form": closed_form, "trained_sig": sig,
            "trained_cost": trained_stage1_cost(params),
            "rel_error_grid": np.abs(closed_form - rollout) / rollout,
            "rel_error_trained": np.abs(at_closed - at_rollout) / at_rollout, "ratio_trained": at_closed / at_rollout,
            "median_rel_error_grid": float(np.median(np.abs(closed_form - rollout) / rollout)),
            "median_rel_error_trained": float(np.median(np.abs(at_closed - at_rollout) / at_rollout))}


# ----------------------------------------------------------------------------- tracking


def probe_errors(cell, params, num_phases: int = 8) -> np.ndarray:
    """Tracking error on single-sinusoid probes per snapshot, ``[S, 4]`` (x: f_x; y: f_y; 8 phases),
    relative to the error of doing nothing (1 = not tracking at all). Columns in the order of
    :func:`probe_frequencies`."""
    refs = probe_references(num_phases)  # [4, phases, T, 2]
    nothing = np.mean(np.sum(np.asarray(refs) ** 2, -1), axis=(1, 2))
    return np.asarray(_probe_errors(cell, params, refs)) / nothing


@functools.cache
def probe_references(num_phases: int = 8) -> jax.Array:
    """The single-sinusoid references of :func:`probe_errors`, ``[4, num_phases, T, 2]``."""
    freqs = np.asarray(TRACKING_PARAMS.frequencies)
    phases = np.linspace(-np.pi, np.pi, num_phases, endpoint=False)

    def axis_probes(axis):  # [frequency, phase] of one axis, vmapped (the same values as a loop, bit for bit)
        probe = functools.partial(TRACKING.probe_reference, axis, params=TRACKING_PARAMS)
        return jax.vmap(jax.vmap(probe, (None, 0)), (0, None))(freqs[axis], phases)

    return jnp.concatenate([axis_probes(0), axis_probes(1)])


@functools.partial(jax.jit, static_argnums=0)
def _probe_errors(cell, params, refs):
    """Mean squared tracking error per snapshot and probe, ``[S, 4]`` (compiled once per cell and shape)."""
    plant, task_params = TRACKING, TRACKING_PARAMS
    readout = default_readout(cell, 2)
    h0, key = initial_carry(cell, 4), jax.random.PRNGKey(0)

    def one(p):
        policy = lambda h, y: (*controller_step(cell, readout, p, h, y), ())  # noqa: E731
        run = lambda ref: tracking_rollout(policy, h0, jnp.zeros(4), ref, key, task_params, plant.num_samples)[0]
        return jnp.mean(jax.vmap(jax.vmap(run))(refs), axis=(1, 2))

    return jax.vmap(one)(params)


def probe_frequencies() -> list[tuple[str, float]]:
    """``(axis, f in Hz)`` of the probe columns: x 0.1, x 0.3, y 0.2, y 0.4 (paper ω = 0.63 … 2.51)."""
    freqs = np.asarray(TRACKING_PARAMS.frequencies)
    return [(axis, float(f)) for axis, row in zip("xy", freqs) for f in row]


def acquisition_updates(snapshot_updates, errors, level: float = 0.5) -> np.ndarray:
    """First snapshot update at which each probe's relative error is below ``level`` (−1 if never)."""
    below = np.asarray(errors) < level
    first = np.where(below.any(0), np.argmax(below, 0), -1)
    return np.where(first >= 0, np.asarray(snapshot_updates)[first], -1)
