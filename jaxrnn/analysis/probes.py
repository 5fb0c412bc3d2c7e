"""Integration probes: does a network hold the evidence of a pulse after the stimulus ends?

Pulse experiment (McMahan et al. 2021, Fig. 4 "transient vs stable integration"; the decision
task's pulse variant, :class:`jaxrnn.tasks.decision.DecisionParams` ``stimulus_end``): a
noise-free trial whose sensory input is on for the first ``pulse`` steps and off afterwards,
the context cue on throughout, for ``T = trial_length`` steps::

    u_t = s·μ·e_c·[t < pulse] (+ cue e_{n+c} for N-CDI)       s = ±1, μ ∈ coherences, c ∈ contexts

(equal to ``DecisionTask.trial`` with ``noise_std = 0``, ``stimulus_end = pulse`` and the
uncued sensory channels set to 0, as :func:`probe_inputs`). From ``x_0`` the network runs
``x_{t+1} = step(x_t, u_t)`` and a *linear* readout ``y_t = readout(x_t)`` (the decoded
evidence before any output nonlinearity: ``W_out x`` for BPTT/GA, ``W_out tanh(x)`` for
Hebbian/full-FORCE). Input-independent drift cancels in the antisymmetric part::

    e_c,μ(t) = ½ (y_t[s = +1] − y_t[s = −1])
    response  R = mean_{c,μ} e(pulse − 1)          (evidence at the end of the pulse)
    retention ρ = mean_{c,μ} e(T − 1) / R          (kept fraction after D = T − pulse steps)
    decay time τ̂ = D / ln(1/ρ)  (0 < ρ < 1);  inf for ρ ≥ 1;  0 for ρ ≤ 0

**Criterion** (:func:`classify`): ``UNRESPONSIVE`` (−1) if ``|R| < min_response``; else
``STABLE`` (1) if ``ρ ≥ threshold`` — the sign is kept and at least ``threshold`` (½) of the
magnitude survives the delay, i.e. for a leaky integrator ``e ∝ exp(−t/τ)`` the integration
time constant is ``τ ≥ D / ln 2``; else ``TRANSIENT`` (0): the evidence decays back towards the
no-input state. Choose ``D`` long compared with the trial (the task's 750 steps: a pulse of
100–250 steps and a delay of ≥ 500).

Everything is written for one network (``step(x, u)``, ``readout(x)``); the population form
:func:`integration_probe_population` vmaps over a params pytree (``step(params, x, u)``,
``readout(params, x)``), one compiled program for all members.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrnn._checks import check_range, fail

STABLE = 1
TRANSIENT = 0
UNRESPONSIVE = -1
DEFAULT_COHERENCES = (0.05, 0.1, 0.1857)


@struct.dataclass
class ProbeResult:
    """Pulse-probe outcome of one network (leading member axis under vmap).

    Attributes:
      evidence: ``[C, T]`` antisymmetric readout ``e(t)`` per condition (context × coherence).
      response: ``R``, mean evidence at the end of the pulse.
      retention: ``ρ``, mean final evidence over ``R`` (NaN if ``R = 0``).
      decay_time: ``τ̂`` in steps.
      label: int32 ``STABLE`` (1), ``TRANSIENT`` (0) or ``UNRESPONSIVE`` (−1).
    """

    evidence: jax.Array
    response: jax.Array
    retention: jax.Array
    decay_time: jax.Array
    label: jax.Array


def pulse_inputs(num_contexts: int, num_steps: int, pulse: int,
                 coherences=DEFAULT_COHERENCES, dtype: Any = jnp.float32) -> jax.Array:
    """``[2, C, T, M]`` pulse inputs: sign (+1, −1) × condition (context-major, then μ) × time.

    Args:
      num_contexts: 0 for RDM (``M = 1``), ``n ≥ 2`` for N-CDI (``M = 2n``).
      num_steps: ``T`` (the trial length).
      pulse: steps with the stimulus on (``stimulus_end``), ``1 ≤ pulse < T``.
      coherences: the evidence strengths ``μ``.
    """
    check_range("num_contexts", num_contexts, 0, integer=True)
    check_range("num_steps", num_steps, 2, integer=True)
    check_range("pulse", pulse, 1, num_steps - 1, integer=True)
    mu = np.asarray(coherences, np.float64).reshape(-1)
    if mu.size == 0 or np.any(mu <= 0):
        fail("coherences", coherences, "a non-empty list of positive coherences")
    n = max(int(num_contexts), 1)
    M = 1 if num_contexts == 0 else 2 * n
    on = (np.arange(num_steps) < pulse).astype(np.float64)
    inputs = np.zeros((2, n, mu.size, num_steps, M))
    for c in range(n):
        for sign_index, sign in enumerate((1.0, -1.0)):
            inputs[sign_index, c, :, :, c] = sign * mu[:, None] * on[None, :]
        if num_contexts:
            inputs[:, c, :, :, n + c] = 1.0
    return jnp.asarray(inputs.reshape(2, n * mu.size, num_steps, M), dtype)


def classify(response: jax.Array, retention: jax.Array, *, threshold: float = 0.5,
             min_response: float = 0.05) -> jax.Array:
    """int32 labels: UNRESPONSIVE if ``|R| < min_response``, STABLE if ``ρ ≥ threshold``, else TRANSIENT."""
    label = jnp.where(retention >= threshold, STABLE, TRANSIENT)
    return jnp.where(jnp.abs(response) < min_response, UNRESPONSIVE, label).astype(jnp.int32)


def integration_probe(
    step: Callable[[jax.Array, jax.Array], jax.Array],
    readout: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    inputs: jax.Array,
    pulse: int,
    *,
    threshold: float = 0.5,
    min_response: float = 0.05,
) -> ProbeResult:
    """Pulse probe of one network (see the module docstring).

    Args:
      step: ``step(x[N], u[M]) -> x_next[N]``.
      readout: ``readout(x[N]) -> y[O]`` (linear decoded evidence; output 0 is used).
      x0: ``[N]`` initial state (e.g. zeros).
      inputs: ``[2, C, T, M]`` from :func:`pulse_inputs` (same ``pulse``).
      pulse: steps with the stimulus on.
      threshold, min_response: the criterion of :func:`classify`.
    """
    inputs = jnp.asarray(inputs)
    if inputs.ndim != 4 or inputs.shape[0] != 2:
        fail("inputs.shape", inputs.shape, "[2, C, T, M] (from pulse_inputs)")
    T = inputs.shape[2]
    check_range("pulse", pulse, 1, T - 1, integer=True)
    x0 = jnp.asarray(x0)
    if x0.ndim != 1:
        fail("x0.shape", x0.shape, "[N] (one initial state)", "for a population use integration_probe_population")

    def run(us):
        def body(x, u):
            x = step(x, u)
            return x, readout(x)[0]

        return jax.lax.scan(body, x0, us)[1]

    y = jax.vmap(jax.vmap(run))(inputs.astype(x0.dtype))  # [2, C, T]
    evidence = 0.5 * (y[0] - y[1])
    response = jnp.mean(evidence[:, pulse - 1])
    final = jnp.mean(evidence[:, T - 1])
    retention = jnp.where(response != 0, final / jnp.where(response != 0, response, 1.0), jnp.nan)
    delay = T - pulse
    log_inverse = -jnp.log(jnp.clip(retention, 1e-30, 1.0))
    decay_time = jnp.where(retention >= 1.0, jnp.inf,
                           jnp.where(retention <= 0.0, 0.0, delay / jnp.where(log_inverse > 0, log_inverse, 1.0)))
    label = classify(response, retention, threshold=threshold, min_response=min_response)
    return ProbeResult(evidence=evidence, response=response, retention=retention, decay_time=decay_time,
                       label=label)


@functools.partial(jax.jit, static_argnames=("step", "readout", "pulse", "threshold", "min_response"))
def _probe_population(step, readout, params, x0, inputs, pulse, threshold, min_response):
    def one(p, x):
        return integration_probe(functools.partial(step, p), functools.partial(readout, p), x, inputs, pulse,
                                 threshold=threshold, min_response=min_response)

    return jax.vmap(one)(params, x0)


def integration_probe_population(
    step: Callable[[Any, jax.Array, jax.Array], jax.Array],
    readout: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    x0: jax.Array,
    inputs: jax.Array,
    pulse: int,
    *,
    threshold: float = 0.5,
    min_response: float = 0.05,
) -> ProbeResult:
    """:func:`integration_probe` vmapped over members: ``params`` leaves ``[K, ...]``, ``x0[K, N]``.

    ``step`` and ``readout`` must be hashable (module-level functions or ``functools.partial``
    of them): they key the compilation cache.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 2:
        fail("x0.shape", x0.shape, "[K, N] (one initial state per member)")
    check_range("threshold", threshold)
    check_range("min_response", min_response, 0.0)
    return _probe_population(step, readout, params, x0, jnp.asarray(inputs), int(pulse), float(threshold),
                             float(min_response))
