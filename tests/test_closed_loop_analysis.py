"""Reference tests for jaxrnn.analysis.closed_loop and jaxrnn.analysis.control (Ger & Barak 2025)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import LinearRegression

from jaxrnn.analysis import closed_loop as cl
from jaxrnn.analysis import control as ct
from jaxrnn.analysis.linearize import spectrum

A_DI = np.array([[1.0, 1.0], [0.0, 1.0]])
B_DI = np.array([[0.0], [1.0]])
C_DI = np.array([[1.0, 0.0]])


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


closed_loop_cost = jax.jit(ct.closed_loop_cost, static_argnames="T")
lqr = jax.jit(ct.lqr)


def _rank1(N=20, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=N) / np.sqrt(N) for _ in range(4)]  # m, z, u, v


def _numpy_joint(A, B, C, W_in, W_rec, W_out, alpha):
    N = W_rec.shape[0]
    top = np.hstack([A, B @ W_out])
    bottom = np.hstack([alpha * W_in @ C @ A, alpha * W_in @ C @ B @ W_out + (1 - alpha) * np.eye(N) + alpha * W_rec])
    return np.vstack([top, bottom])


# ----------------------------------------------------------------------------- joint matrix


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_joint_matrix_equals_numpy_blocks(alpha):
    rng = np.random.default_rng(1)
    n, m, c, N = 3, 2, 2, 7
    A, B, C = rng.normal(size=(n, n)), rng.normal(size=(n, m)), rng.normal(size=(c, n))  # C B ≠ 0
    W_in, W_rec, W_out = rng.normal(size=(N, c)), rng.normal(size=(N, N)), rng.normal(size=(m, N))
    P = cl.joint_matrix(A, B, C, W_in, W_rec, W_out, alpha)
    np.testing.assert_allclose(P, _numpy_joint(A, B, C, W_in, W_rec, W_out, alpha), rtol=1e-12, atol=1e-12)


def test_joint_matrix_matches_explicit_controller_step():
    """One step of P equals the controller/plant recursion with y = C x_next (SPECS 1.6)."""
    rng = np.random.default_rng(2)
    N, alpha = 5, 0.3
    W_in, W_rec, W_out = rng.normal(size=(N, 1)), rng.normal(size=(N, N)), rng.normal(size=(1, N))
    B = np.array([[0.3], [1.0]])  # C B ≠ 0, so the α on W_in C B W_out matters
    x, h = rng.normal(size=2), rng.normal(size=N)
    u = W_out @ h
    x_next = A_DI @ x + B @ u
    h_next = (1 - alpha) * h + alpha * (W_rec @ h + W_in @ (C_DI @ x_next))
    P = cl.joint_matrix(A_DI, B, C_DI, W_in, W_rec, W_out, alpha)
    np.testing.assert_allclose(P @ np.concatenate([x, h]), np.concatenate([x_next, h_next]), atol=1e-12)


def test_joint_matrix_rejects_bad_shapes_and_keeps_float32():
    m, z, u, v = _rank1(6)
    with pytest.raises(ValueError, match=r"W_in\.shape"):
        cl.joint_matrix(A_DI, B_DI, C_DI, np.ones((5, 1)), np.outer(u, v), z)
    with pytest.raises(ValueError, match=r"A\.shape"):
        cl.joint_matrix(np.ones((3, 2, 2)), B_DI, C_DI, m, np.outer(u, v), z)
    with jax.enable_x64(False):
        P = cl.joint_matrix(*(jnp.asarray(a, jnp.float32) for a in (A_DI, B_DI, C_DI, m, np.outer(u, v), z)))
        assert P.dtype == jnp.float32 and P.shape == (8, 8)


# ----------------------------------------------------------------------------- spectra, stages


def test_spectrum_and_radius_match_numpy():
    P = np.random.default_rng(3).normal(size=(6, 6)) / 2
    eig = np.linalg.eigvals(P)
    np.testing.assert_allclose(np.abs(spectrum(P)), np.sort(np.abs(eig))[::-1], rtol=1e-12)
    np.testing.assert_allclose(cl.spectral_radius(P), np.max(np.abs(eig)), rtol=1e-12)
    rotation = np.array([[0.0, -1.1], [1.1, 0.0]])
    assert bool(cl.dominant_is_complex(rotation)) and not bool(cl.dominant_is_complex(np.diag([2.0, 0.5])))


@pytest.mark.parametrize(
    "radii, expected",
    [([1.2, 0.9, 1.1, 0.8, 0.7], 3), ([0.5, 0.4], 0), ([0.5, 1.0], -1), ([1.5, np.nan, 0.9], 2), ([2.0], -1)],
)
def test_stabilisation_epoch(radii, expected):
    assert int(cl.stabilisation_epoch(jnp.asarray(radii))) == expected


# ----------------------------------------------------------------------------- rank-1 theory


def test_reduced_system_eigenvalues_equal_full_nonzero_spectrum():
    m, z, u, v = _rank1(20)
    P = np.asarray(cl.joint_matrix(A_DI, B_DI, C_DI, m, np.outer(u, v), z))
    sigmas = cl.overlaps(m, z, u, v)
    np.testing.assert_allclose(sigmas, [z @ m, z @ u, v @ m, v @ u], rtol=1e-12)
    P_eff = np.asarray(cl.reduced_system(*sigmas))
    full = np.linalg.eigvals(P)
    reduced = np.linalg.eigvals(P_eff)
    full, reduced = full[np.abs(full) > 1e-6], reduced[np.abs(reduced) > 1e-6]
    assert full.size == reduced.size == 3
    np.testing.assert_allclose(np.sort_complex(full), np.sort_complex(reduced), atol=1e-8)
    # P_eff is P restricted to span{e_x, e_v, [0; m], [0; u]}: P T = T P_eff.
    T = np.zeros((22, 4))
    T[0, 0] = T[1, 1] = 1.0
    T[2:, 2], T[2:, 3] = m, u
    np.testing.assert_allclose(P @ T, T @ P_eff, atol=1e-12)


def test_cubic_coefficients_match_numpy_poly():
    rng = np.random.default_rng(4)
    for sigmas in rng.normal(size=(5, 4)):
        poly = np.poly(np.asarray(cl.reduced_system(*sigmas)))
        np.testing.assert_allclose(poly[-1], 0.0, atol=1e-12)  # the λ factor
        np.testing.assert_allclose(cl.characteristic_coefficients(*sigmas), poly[:4], atol=1e-12)
        s_zm, s_zu, s_vm, s_vu = sigmas
        lam = 0.7 + 0.2j  # factorised form (λ − σ_vu)((λ − 1)² − σ_zm) − σ_vm σ_zu
        np.testing.assert_allclose(np.polyval(poly[:4], lam), (lam - s_vu) * ((lam - 1) ** 2 - s_zm) - s_vm * s_zu)


def _closest(roots, target):
    return roots[np.argmin(np.abs(roots - target))]


@pytest.mark.parametrize("s_zm", [-0.04, 0.04])
def test_stage1_eigenvalues_approximate_exact_roots(s_zm):
    small = 1e-5  # σ_vu and σ_vm σ_zu → 0: p(λ) → λ((λ − 1)² − σ_zm)
    roots = np.roots(cl.characteristic_coefficients(s_zm, 1e-3, 1e-2, small))
    approx = np.asarray(cl.stage1_eigenvalues(s_zm))
    for lam in approx:
        assert abs(_closest(roots, lam) - lam) < 1e-3
    assert np.iscomplexobj(approx) and (abs(approx[0].imag) > 0) == (s_zm < 0)


def test_stage1_loss_is_geometric_sum():
    for s_zm in (-0.3, -0.01, 0.2):
        r = abs(1 + np.sqrt(complex(s_zm))) ** 2
        np.testing.assert_allclose(cl.stage1_loss(s_zm, 101), 0.5 * sum(r**t for t in range(101)), rtol=1e-10)
    np.testing.assert_allclose(cl.stage1_loss(0.0, 101), 50.5)
    r = abs(1 + np.sqrt(complex(-1e-7))) ** 2  # |r − 1| < 1e-6: series branch
    np.testing.assert_allclose(cl.stage1_loss(-1e-7, 101), 0.5 * sum(r**t for t in range(101)), rtol=1e-9)


def test_stage2_perturbation_orders():
    s_zm, s_vu = -0.09, 0.3
    errors = {}
    for delta in (1e-2, 5e-3):
        s_zu, s_vm = delta, 1.0
        roots = np.roots(cl.characteristic_coefficients(s_zm, s_zu, s_vm, s_vu))
        lam3 = complex(cl.stage2_lambda3(s_zm, s_zu, s_vm, s_vu))
        lam1 = complex(cl.stage2_lambda1(s_zm, s_zu, s_vm, s_vu))
        stage1 = complex(cl.stage1_eigenvalues(s_zm)[0])
        exact1, exact3 = _closest(roots, lam1), _closest(roots, lam3)
        pair = complex(cl.stage2_pair_product(s_zm, s_zu, s_vm, s_vu))
        errors[delta] = (abs(lam3 - exact3), abs(lam1 - exact1), abs(stage1 - exact1), abs(pair - abs(exact1) ** 2))
        _, b, c, _ = np.asarray(cl.characteristic_coefficients(s_zm, s_zu, s_vm, s_vu))
        np.testing.assert_allclose(c + b * exact3 + exact3**2, abs(exact1) ** 2, rtol=1e-12)  # exact identity
    (e3, e1, e0, ep), (h3, h1, h0, hp) = errors[1e-2], errors[5e-3]
    assert e1 < 1e-2 * e0  # second order beats zeroth order by far
    assert 0.2 < h3 / e3 < 0.3 and 0.2 < hp / ep < 0.3  # λ₃ and λ₁λ₂ errors O(δ²)
    assert 0.09 < h1 / e1 < 0.16  # λ₁ error O(δ³)
    assert 0.45 < h0 / e0 < 0.55  # stage-1 error O(δ)


def test_effective_loss_terms_and_optimiser():
    sigmas = jnp.array([-0.1, 0.1, 0.2, 0.2])
    P3 = np.linalg.matrix_power(np.asarray(cl.reduced_system(*sigmas)), 3)
    np.testing.assert_allclose(cl.effective_loss(sigmas, 0.0, 20), np.sum(P3[:2, :2] ** 2), rtol=1e-12)
    np.testing.assert_allclose(cl.effective_loss(sigmas, 1.0, 20), cl.stage2_pair_product(*sigmas) ** 20, rtol=1e-12)
    grad_fn = jax.jit(jax.grad(cl.effective_loss), static_argnums=2)  # one compile for the 31 gradients below
    grad = grad_fn(sigmas, 0.3, 20)
    basis = np.eye(4) * 1e-6
    fd = [(cl.effective_loss(sigmas + e, 0.3, 20) - cl.effective_loss(sigmas - e, 0.3, 20)) / 2e-6 for e in basis]
    np.testing.assert_allclose(grad, fd, rtol=1e-6)

    path, losses = jax.jit(cl.optimise_effective_loss, static_argnames=("T", "steps"))(
        sigmas, 0.3, T=20, learning_rate=1e-2, steps=30, clip=1.0
    )
    reference, s = [np.asarray(sigmas)], np.asarray(sigmas)
    for _ in range(30):  # SGD with global-norm clipping, by hand
        g = np.asarray(grad_fn(jnp.asarray(s), 0.3, 20))
        g = g * min(1.0, 1.0 / np.linalg.norm(g))
        s = s - 1e-2 * g
        reference.append(s)
    np.testing.assert_allclose(path, np.stack(reference), rtol=1e-10, atol=1e-12)
    assert path.shape == (31, 4) and losses[-1] < losses[0]


# ----------------------------------------------------------------------------- feedback gains


def test_feedback_gains_recover_linear_controller_like_sklearn():
    rng = np.random.default_rng(5)
    k_true = np.array([-0.4, -1.1])
    states, controls = np.zeros((10, 50, 2)), np.zeros((10, 50))
    x = rng.uniform(-1, 1, size=(10, 2))
    for t in range(50):  # the authors' protocol: u_0 = 0, u_t = k·x_t afterwards
        u = np.zeros(10) if t == 0 else x @ k_true
        states[:, t], controls[:, t] = x, u
        x = x @ A_DI.T + u[:, None] * B_DI[:, 0]
    k = ct.feedback_gains_from_rollouts(states, controls, drop=1)
    np.testing.assert_allclose(k, k_true, rtol=1e-10)
    noisy = controls[:, 1:].reshape(-1) + 0.1 * rng.normal(size=490)
    flat = states[:, 1:].reshape(-1, 2)
    sk = LinearRegression(fit_intercept=False).fit(flat, noisy).coef_
    np.testing.assert_allclose(ct.feedback_gains(flat, noisy), sk, rtol=1e-10)
    assert not np.allclose(ct.feedback_gains_from_rollouts(states, controls, drop=0), k_true, atol=1e-3)
    with pytest.raises(ValueError, match=r"states\.shape"):
        ct.feedback_gains(states, controls)


def test_gain_landscape_matches_direct_rollout():
    k1s, k2s = np.array([-1.2, -0.5, 0.6]), np.array([-1.0, 0.3])
    land = ct.gain_landscape(A_DI, B_DI, k1s, k2s, x0=(1.0, 1.0), T=50)
    for i, k1 in enumerate(k1s):
        for j, k2 in enumerate(k2s):
            M, x, total = A_DI + B_DI @ np.array([[k1, k2]]), np.array([1.0, 1.0]), 0.0
            for _ in range(50):
                total += x @ x
                x = M @ x
            np.testing.assert_allclose(land[i, j], np.log(total / 50), rtol=1e-9)


def _eigen_labels(k1, k2):
    """The eigenvalue test itself: NumPy eigenvalues of ``[[1, 1], [k1, 1 + k2]]`` for every point."""
    M = np.zeros(k1.shape + (2, 2))
    M[..., 0, :] = 1.0
    M[..., 1, 0], M[..., 1, 1] = k1, 1.0 + k2
    eig = np.linalg.eigvals(M)
    rho = np.abs(eig).max(-1)
    label = np.where(rho < 1, 2, np.where(np.abs(eig.imag).max(-1) > 1e-12, 1, 0))
    return label, np.abs(rho - 1) < 1e-9


def test_stability_map_closed_form_equals_eigenvalue_test_on_a_dense_grid():
    # Dense grid over the authors' window and beyond (the whole stable triangle (0,0), (0,-2), (-4,-4)).
    k1, k2 = (a.ravel() for a in np.meshgrid(np.linspace(-4.5, 0.6, 401), np.linspace(-4.5, 0.6, 403)))
    vertices = np.array(ct.STABLE_TRIANGLE)
    inside = 0.999 * vertices + 0.001 * vertices.mean(0)  # just inside each vertex
    # The 50 x 50 landscape grid, read as its nearest node (what a filled plot of it shows), mislabels
    # points near every boundary.
    grid = np.linspace(-1.2, 0.6, 50)
    f1, f2 = (a.ravel() for a in np.meshgrid(np.linspace(-1.2, 0.6, 351), np.linspace(-1.2, 0.6, 353)))
    nearest = lambda k: grid[np.rint((k - grid[0]) / (grid[1] - grid[0])).astype(int)]  # noqa: E731
    coarse, _ = _eigen_labels(nearest(f1), nearest(f2))
    fine, fine_boundary = _eigen_labels(f1, f2)
    wrong = (coarse != fine) & ~fine_boundary
    assert wrong.sum() > 300
    # One call for every point (each new shape compiles JAX's eager ops once).
    q1 = np.concatenate([k1, inside[:, 0], f1[wrong], [-0.1]])
    q2 = np.concatenate([k2, inside[:, 1], f2[wrong], [-0.101]])
    labels = np.asarray(ct.stability_map(q1, q2))
    expected, on_boundary = _eigen_labels(q1, q2)
    np.testing.assert_array_equal(labels[~on_boundary], expected[~on_boundary])
    assert set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_array_equal(labels[k1.size:k1.size + 3], [2, 2, 2])
    assert labels[-1] == 2  # just below the diagonal k2 = k1: stable, a slowly decaying oscillation


# ----------------------------------------------------------------------------- LQR / Kalman / LQG


def _random_system(seed, n=3, m=2):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(size=(n, n)), rng.normal(size=(n, m))
    Q = (lambda X: X @ X.T + 0.5 * np.eye(n))(rng.normal(size=(n, n)))
    R = (lambda X: X @ X.T + 0.5 * np.eye(m))(rng.normal(size=(m, m)))
    return A, B, Q, R


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_lqr_matches_scipy(seed):
    A, B, Q, R = (A_DI, B_DI, np.eye(2), np.eye(1)) if seed is None else _random_system(seed)
    P_ref = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K_ref = np.linalg.solve(R + B.T @ P_ref @ B, B.T @ P_ref @ A)
    P, converged = ct.solve_dare(A, B, Q, R)
    assert bool(converged)
    np.testing.assert_allclose(P, P_ref, rtol=1e-9)
    np.testing.assert_allclose(ct.lqr(A, B, Q, R), K_ref, rtol=1e-9)
    x0 = np.ones(A.shape[0])
    np.testing.assert_allclose(ct.lqr_cost(A, B, Q, R, x0), x0 @ P_ref @ x0, rtol=1e-9)


def test_lqr_cost_of_given_gain_and_kalman_gain():
    K = np.array([[0.3, 0.9]])  # u = −K x, stable for the double integrator
    x, total = np.array([1.0, -0.5]), 0.0
    for _ in range(2000):
        u = -K @ x
        total += x @ x + 2.0 * u @ u
        x = A_DI @ x + B_DI @ u
    np.testing.assert_allclose(ct.lqr_cost(A_DI, B_DI, np.eye(2), 2.0, np.array([1.0, -0.5]), K), total, rtol=1e-9)
    assert np.isinf(ct.lqr_cost(A_DI, B_DI, np.eye(2), 1.0, np.ones(2), -K))

    W, V = np.diag([0.1, 0.2]), np.array([[0.5]])
    Sigma = scipy.linalg.solve_discrete_are(A_DI.T, C_DI.T, W, V)
    L_ref = Sigma @ C_DI.T @ np.linalg.inv(C_DI @ Sigma @ C_DI.T + V)
    np.testing.assert_allclose(ct.kalman_gain(A_DI, C_DI, W, V), L_ref, rtol=1e-9)


def test_closed_loop_cost_rnn_reference_and_lqg_limits():
    rng = np.random.default_rng(6)
    N, alpha, T = 8, 0.4, 30
    W_in, W_rec, W_out = rng.normal(size=(N, 1)) * 0.3, rng.normal(size=(N, N)) * 0.2, rng.normal(size=(1, N)) * 0.3
    x0s = rng.uniform(-1, 1, size=(4, 2))
    total = 0.0
    for x0 in x0s:  # explicit recursion, not the joint matrix
        x, h = x0.copy(), np.zeros(N)
        for _ in range(T):
            u = W_out @ h
            total += (x @ x + 0.5 * u @ u) / T
            x = A_DI @ x + B_DI @ u
            h = (1 - alpha) * h + alpha * (W_rec @ h + W_in @ (C_DI @ x))
    controller = ct.rnn_controller(W_in, W_rec, W_out, alpha)
    cost = closed_loop_cost(A_DI, B_DI, C_DI, controller, x0s, T, R=0.5)
    np.testing.assert_allclose(cost, total / len(x0s), rtol=1e-10)

    # LQG with full, nearly noise-free observation reduces to LQR state feedback.
    Q, R = np.eye(2), np.eye(1)
    lqg = ct.lqg_controller(A_DI, B_DI, np.eye(2), Q, R, np.eye(2), 1e-10 * np.eye(2))
    feedback = ct.state_feedback_controller(-lqr(A_DI, B_DI, Q, R))
    np.testing.assert_allclose(
        closed_loop_cost(A_DI, B_DI, np.eye(2), lqg, x0s, 50),
        closed_loop_cost(A_DI, B_DI, np.eye(2), feedback, x0s, 50), rtol=1e-6,
    )
    partial = ct.lqg_controller(A_DI, B_DI, C_DI, Q, R, 0.01 * np.eye(2), 0.01 * np.eye(1))
    assert cl.spectral_radius(ct.closed_loop_matrix(A_DI, B_DI, C_DI, partial)) < 1.0


def test_closed_loop_cost_dtype_is_the_promotion_of_its_inputs():
    """float32 params with NumPy (float64) plant matrices: float64 under x64 (was a scan-carry
    TypeError when A was float32), float32 without x64; all-float32 inputs stay float32."""
    rng = np.random.default_rng(7)
    N, T = 5, 12
    W_in, W_rec, W_out = rng.normal(size=(N, 1)), 0.2 * rng.normal(size=(N, N)), 0.1 * rng.normal(size=(1, N))
    x0s = rng.uniform(-1, 1, size=(3, 2))
    reference = closed_loop_cost(A_DI, B_DI, C_DI, ct.rnn_controller(W_in, W_rec, W_out), x0s, T, R=0.5)
    f32 = lambda *a: [np.asarray(x, np.float32) for x in a]  # noqa: E731
    controller32 = ct.rnn_controller(*f32(W_in, W_rec, W_out))
    exact32 = closed_loop_cost(A_DI, B_DI, C_DI, ct.rnn_controller(*(np.asarray(w, np.float64) for w in
                                                                     f32(W_in, W_rec, W_out))), x0s, T, R=0.5)
    cases = {  # (A, B, C, controller, x0s) -> expected dtype under x64
        "plant64/params32": ((A_DI, B_DI, C_DI, controller32, x0s), np.float64),
        "A32/params32/B,C64": ((*f32(A_DI), B_DI, C_DI, controller32, x0s), np.float64),
        "plant32/params64": ((*f32(A_DI, B_DI, C_DI), ct.rnn_controller(W_in, W_rec, W_out), x0s), np.float64),
        "all32": ((*f32(A_DI, B_DI, C_DI), controller32, *f32(x0s)), np.float32),
    }
    for name, (args, dtype) in cases.items():
        cost = closed_loop_cost(*args, T, R=0.5)  # Python-scalar R is weak: never promotes
        assert cost.dtype == dtype, name
        expected = exact32 if args[3] is controller32 else reference
        np.testing.assert_allclose(cost, expected, rtol=1e-12 if dtype == np.float64 else 1e-5, err_msg=name)
    with jax.enable_x64(False):
        for name, (args, _) in cases.items():
            cost = ct.closed_loop_cost(*jax.tree.map(np.asarray, args), T, R=0.5)  # float64 jax arrays cannot enter x32
            assert cost.dtype == np.float32, name
            np.testing.assert_allclose(cost, reference, rtol=1e-4, err_msg=name)


# ----------------------------------------------------------------------------- vmapped forms


def test_vmapped_forms_equal_loops():
    nets = [_rank1(10, seed) for seed in range(3)]
    m, z, u, v = (np.stack(a) for a in zip(*nets))
    W_rec = np.einsum("ki,kj->kij", u, v)
    Ps = cl.joint_matrix_batched(A_DI, B_DI, C_DI, m[..., None], W_rec, z[:, None, :], 1.0)
    loop = [cl.joint_matrix(A_DI, B_DI, C_DI, *net[:1], np.outer(net[2], net[3]), net[1]) for net in nets]
    np.testing.assert_allclose(Ps, np.stack(loop), rtol=1e-12)
    np.testing.assert_allclose(cl.spectral_radius(Ps), [cl.spectral_radius(P) for P in loop], rtol=1e-10)
    sig = cl.overlaps_batched(m, z, u, v)
    np.testing.assert_allclose(sig, np.stack([cl.overlaps(*net) for net in nets]), rtol=1e-12)
    np.testing.assert_allclose(cl.reduced_system_batched(*sig.T), np.stack([cl.reduced_system(*s) for s in sig]))

    radii = jnp.array([[1.2, 0.9, 0.8], [0.5, 0.5, 0.5], [0.5, 0.5, 1.5]])
    np.testing.assert_array_equal(cl.stabilisation_epoch_batched(radii), [1, 0, -1])

    rng = np.random.default_rng(7)
    states, controls = rng.normal(size=(3, 40, 2)), rng.normal(size=(3, 40))
    np.testing.assert_allclose(
        ct.feedback_gains_batched(states, controls),
        [ct.feedback_gains(s, c) for s, c in zip(states, controls)],
        rtol=1e-10,
    )
    controllers = [ct.rnn_controller(mk[:, None], np.outer(uk, vk), zk[None, :]) for mk, zk, uk, vk in nets]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *controllers)
    x0s = rng.uniform(-1, 1, size=(5, 2))
    np.testing.assert_allclose(
        ct.closed_loop_cost_batched(A_DI, B_DI, C_DI, stacked, x0s, 20, None, None),
        [closed_loop_cost(A_DI, B_DI, C_DI, c, x0s, 20) for c in controllers], rtol=1e-10,
    )
    systems = [_random_system(s) for s in range(2)]
    stacked_sys = [np.stack(a) for a in zip(*systems)]
    np.testing.assert_allclose(ct.lqr_batched(*stacked_sys), [lqr(*s) for s in systems], rtol=1e-9)
