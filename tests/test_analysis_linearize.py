"""Jacobians, spectra and timescales against finite differences and closed forms."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.analysis.linearize import jacobian, jacobians, spectrum, timescales


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _network(seed: int = 0, n: int = 6, m: int = 3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal((n, m)), 0.1 * rng.standard_normal(n))


def _ctrnn(params, x, u, alpha=0.1):
    w_rec, w_in, b = params
    return (1 - alpha) * x + alpha * (w_rec @ (1.0 + jnp.tanh(x)) + w_in @ u + b)


def _central_difference(f, z, h=1e-6):
    cols = []
    for j in range(z.size):
        e = np.zeros_like(z)
        e[j] = h
        cols.append((np.asarray(f(z + e)) - np.asarray(f(z - e))) / (2 * h))
    return np.stack(cols, axis=1)


def test_jacobian_equals_finite_differences():
    params = tuple(jnp.asarray(p) for p in _network())
    step = functools.partial(_ctrnn, params)
    rng = np.random.default_rng(1)
    x, u = rng.standard_normal(6), rng.standard_normal(3)
    J_rec, J_inp = jacobian(step, jnp.asarray(x), jnp.asarray(u))
    assert J_rec.shape == (6, 6) and J_inp.shape == (6, 3)
    np.testing.assert_allclose(J_rec, _central_difference(lambda z: step(z, u), x), atol=1e-8)
    np.testing.assert_allclose(J_inp, _central_difference(lambda z: step(x, z), u), atol=1e-8)


def test_jacobian_of_tanh_rnn_matches_closed_form():
    w_rec, w_in, b = _network(2)
    step = lambda h, u: jnp.tanh(w_rec @ h + w_in @ u + b)  # noqa: E731
    h, u = np.random.default_rng(3).standard_normal(6), np.random.default_rng(4).standard_normal(3)
    h_next = np.tanh(w_rec @ h + w_in @ u + b)
    J_rec, J_inp = jacobian(step, jnp.asarray(h), jnp.asarray(u))
    np.testing.assert_allclose(J_rec, (1 - h_next**2)[:, None] * w_rec, atol=1e-12)
    np.testing.assert_allclose(J_inp, (1 - h_next**2)[:, None] * w_in, atol=1e-12)


def test_jacobians_vmapped_equals_loop():
    params = tuple(jnp.asarray(p) for p in _network())
    step = functools.partial(_ctrnn, params)
    rng = np.random.default_rng(5)
    xs, us = jnp.asarray(rng.standard_normal((4, 6))), jnp.asarray(rng.standard_normal((4, 3)))
    J_rec, J_inp = jacobians(step, xs, us)
    J_shared, _ = jacobians(step, xs, us[0])
    for k in range(4):
        ref_rec, ref_inp = jacobian(step, xs[k], us[k])
        np.testing.assert_allclose(J_rec[k], ref_rec, atol=1e-14)
        np.testing.assert_allclose(J_inp[k], ref_inp, atol=1e-14)
        np.testing.assert_allclose(J_shared[k], jacobian(step, xs[k], us[0])[0], atol=1e-14)


def test_spectrum_is_numpy_eigvals_sorted_by_modulus():
    Js = np.random.default_rng(6).standard_normal((3, 5, 5))
    ev = np.asarray(spectrum(jnp.asarray(Js)))
    assert ev.shape == (3, 5) and np.iscomplexobj(ev)
    for k in range(3):
        assert np.all(np.diff(np.abs(ev[k])) <= 1e-12)
        np.testing.assert_allclose(np.sort_complex(ev[k]), np.sort_complex(np.linalg.eigvals(Js[k])), atol=1e-10)


def test_timescales_of_a_diagonal_linear_network():
    a = np.array([0.99, -0.9, 0.5, 0.0, 1.0, 1.2])
    B = np.ones((6, 2))
    step = lambda x, u: jnp.asarray(a) * x + jnp.asarray(B) @ u  # noqa: E731
    J_rec, J_inp = jacobian(step, jnp.zeros(6), jnp.zeros(2))
    np.testing.assert_allclose(J_inp, B)
    ev = spectrum(J_rec)
    np.testing.assert_allclose(np.abs(ev), np.sort(np.abs(a))[::-1], atol=1e-14)
    dt = 0.1
    tau = np.asarray(timescales(ev, dt))
    modulus = np.abs(np.asarray(ev))
    with np.errstate(divide="ignore"):
        expected = dt / np.abs(np.log(modulus))
    np.testing.assert_allclose(tau, expected, rtol=1e-12)
    assert np.isinf(tau[modulus == 1.0]).all() and tau[modulus == 0.0] == 0.0
    np.testing.assert_allclose(tau[np.abs(modulus - 0.99) < 1e-12], dt / -np.log(0.99), rtol=1e-12)
    fixed = np.asarray(timescales(ev, dt, unstable_tau=1.0))
    np.testing.assert_array_equal(fixed[modulus >= 1.0], 1.0)
    np.testing.assert_allclose(fixed[modulus < 1.0], expected[modulus < 1.0], rtol=1e-12)


def test_timescales_of_complex_eigenvalues_use_the_modulus():
    lam = 0.9 * np.exp(1j * np.array([0.0, 0.3, -2.0]))
    np.testing.assert_allclose(timescales(jnp.asarray(lam)), 1.0 / -np.log(0.9), rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: jacobian(lambda x, u: x, jnp.zeros((2, 3)), jnp.zeros(1)), "x.shape"),
        (lambda: jacobian(lambda x, u: x, jnp.zeros(3), jnp.zeros(())), "u.shape"),
        (lambda: jacobian(lambda x, u: x[:2], jnp.zeros(3), jnp.zeros(1)), r"step\(x, u\).shape"),
        (lambda: jacobians(lambda x, u: x, jnp.zeros(3), jnp.zeros(1)), "xs.shape"),
        (lambda: spectrum(jnp.zeros((2, 3))), "J.shape"),
        (lambda: timescales(jnp.ones(2), dt=0.0), "dt"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()
