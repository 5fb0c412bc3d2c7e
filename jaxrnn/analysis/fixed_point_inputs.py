"""Inputs of the fixed-point finder: starting states and McMahan et al.'s static probe inputs.

    x0 = sample_states(key, states[..., N], num, noise_std)     # Golub's sample_states
    u = probe_inputs("rdm" | "cdi" | "ncdi-<n>")                # McMahan's "small" probes, [P, M]
    u, value, context = level_inputs("cdi", FIGURE1_LEVELS)     # Fig. 1d's five inputs per context

``sample_states`` and ``probe_inputs`` are also importable from :mod:`jaxrnn.analysis`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn._checks import check_range, fail

#: McMahan's "small" RDM probe amplitudes (``rnnanalysis.py``): 0, ±0.1, ..., ±1.0 (× 0.03).
RDM_PROBE_LEVELS = (0.0, 0.1, -0.1, 0.2, -0.2, 0.3, -0.3, 0.4, -0.4, 0.5, -0.5,
                    0.6, -0.6, 0.7, -0.7, 0.8, -0.8, 0.9, -0.9, 1.0, -1.0)
RDM_PROBE_SCALE = 0.03
CONTEXT_PROBE_MAX = 0.02
NUM_PROBES_PER_CONTEXT = 21


def sample_states(key: jax.Array, states: jax.Array, num: int, noise_std: float | jax.Array = 0.0) -> jax.Array:
    """``num`` starting states drawn uniformly (with replacement) from visited states.

    As Golub's ``sample_states``: random (trial, time) samples of actual trajectories plus
    optional isotropic Gaussian noise ``N(0, noise_std²)``.

    Args:
      key: PRNG key.
      states: ``[..., N]`` visited states (e.g. ``[B, T, N]`` rollouts); leading axes are
        flattened.
      num: number of samples (static).
      noise_std: standard deviation of the added noise (may be traced).

    Returns:
      ``[num, N]`` array in ``states``' dtype.
    """
    states = jnp.asarray(states)
    if states.ndim < 2:
        fail("states.shape", states.shape, "[..., N] with at least one sample axis", "for one state use states[None]")
    check_range("num", num, 1, integer=True)
    if not isinstance(noise_std, jax.core.Tracer):
        check_range("noise_std", noise_std, 0.0)
    flat = states.reshape(-1, states.shape[-1])
    return _sample_rows(key, flat, jnp.asarray(noise_std, flat.dtype), int(num))


@functools.partial(jax.jit, static_argnames="num")
def _sample_rows(key: jax.Array, flat: jax.Array, noise_std: jax.Array, num: int) -> jax.Array:
    key_index, key_noise = jax.random.split(key)
    index = jax.random.randint(key_index, (num,), 0, flat.shape[0])
    noise = jax.random.normal(key_noise, (num, flat.shape[-1]), flat.dtype)
    return flat[index] + noise_std * noise


def _num_contexts_of(task_name: str, num_contexts: int | None) -> int:
    implied = {"rdm": 0, "cdi": 2, "ncdi": num_contexts}.get(task_name)
    suffix = task_name[len("ncdi-"):] if task_name.startswith("ncdi-") else ""
    if suffix.isdigit():
        implied = int(suffix)
    elif task_name not in ("rdm", "cdi", "ncdi"):
        fail("task_name", task_name, "one of 'rdm', 'cdi', 'ncdi', 'ncdi-<n>' (e.g. 'ncdi-4')")
    if implied is None:
        fail("num_contexts", num_contexts, "an integer >= 2 for task_name 'ncdi'")
    if num_contexts is not None and int(num_contexts) != implied:
        fail("num_contexts", num_contexts, f"{implied} for task {task_name!r} (or None)")
    if task_name != "rdm":
        check_range("num_contexts", implied, 2, integer=True)
    return int(implied)


def probe_inputs(task_name: str, num_contexts: int | None = None, *, dtype: Any = jnp.float32) -> jax.Array:
    """McMahan et al.'s static ("small") probe inputs for the fixed-point analysis.

    From the authors' ``rnnanalysis.py`` (``rdm_fixed_points``, ``N_fixed_points``,
    ``inputs='small'``):

    - **RDM** (``M = 1``): ``0.03 · [0, 0.1, −0.1, 0.2, −0.2, …, 1.0, −1.0]``, 21 rows, in
      that order (increasing ``|·|``).
    - **CDI / N-CDI** with ``n`` contexts (``M = 2n``, inputs ``[sensory_0..n−1,
      context_0..n−1]`` as :mod:`jaxrnn.tasks.decision`): the 21 values
      ``v = linspace(−0.02, 0.02, 21)`` sorted by ``|v|`` (``np.argsort``, as the authors;
      floating-point ties break as ``0.01`` before ``−0.01``); row ``i·n + c`` carries
      ``v_i`` on the cued sensory channel ``c`` **only** (the other sensory channels are 0,
      as in the authors' code, not the same value on every channel) and the one-hot cue
      ``context_c = 1``. Rows are interleaved by context, ``n·21`` rows in all.

    The signed probe value of each row (the topology label of McMahan's Fig. 5) is
    ``inputs[:, 0]`` for RDM and ``inputs[:, :n].sum(-1)`` for N-CDI.

    Args:
      task_name: ``"rdm"``, ``"cdi"`` (2 contexts), ``"ncdi"`` (give ``num_contexts``) or a
        registry name ``"ncdi-<n>"``.
      num_contexts: number of contexts; implied by every name but ``"ncdi"``.
      dtype: output dtype.

    Returns:
      ``[P, M]`` array of static inputs (``P = 21`` for RDM, ``21·n`` otherwise).
    """
    n = _num_contexts_of(task_name, num_contexts)
    if n == 0:
        inputs = RDM_PROBE_SCALE * np.asarray(RDM_PROBE_LEVELS)[:, None]
        return jnp.asarray(inputs, dtype)
    levels = np.linspace(-CONTEXT_PROBE_MAX, CONTEXT_PROBE_MAX, NUM_PROBES_PER_CONTEXT)
    levels = levels[np.argsort(np.abs(levels), kind="stable")]
    inputs = np.zeros((n * NUM_PROBES_PER_CONTEXT, 2 * n))
    for context in range(n):
        inputs[context::n, context] = levels
        inputs[context::n, n + context] = 1.0
    return jnp.asarray(inputs, dtype)


#: The five probe inputs of McMahan et al.'s Fig. 1c–d.
FIGURE1_LEVELS = (-0.5, -0.2, 0.0, 0.2, 0.5)


def level_inputs(task_name: str, levels=FIGURE1_LEVELS, num_contexts: int | None = None, *,
                 dtype: Any = jnp.float32) -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """Static inputs at given signed levels: ``(inputs[P, M], value[P], context[P])``.

    RDM: one row per level, ``u = [v]``. CDI / N-CDI with ``n`` contexts: for each context
    ``c`` (context-major) one row per level with ``v`` on sensory channel ``c`` only and the cue
    ``context_c = 1`` (as :func:`probe_inputs`). McMahan et al.'s Fig. 1d uses
    ``levels = (−0.5, −0.2, 0, 0.2, 0.5)`` (:data:`FIGURE1_LEVELS`); ``context`` is −1 for RDM.
    """
    n = _num_contexts_of(task_name, num_contexts)
    levels = np.asarray(levels, np.float64).reshape(-1)
    if levels.size == 0 or not np.all(np.isfinite(levels)):
        fail("levels", levels, "a non-empty list of finite input values")
    if n == 0:
        return jnp.asarray(levels[:, None], dtype), levels, np.full(levels.size, -1)
    inputs = np.zeros((n * levels.size, 2 * n))
    for c in range(n):
        rows = slice(c * levels.size, (c + 1) * levels.size)
        inputs[rows, c] = levels
        inputs[rows, n + c] = 1.0
    return jnp.asarray(inputs, dtype), np.tile(levels, n), np.repeat(np.arange(n), levels.size)
