"""Miconi's node-perturbation Hebbian rule (Miconi 2017 eLife; as used by McMahan et al. 2021).

Network: a tanh CTRNN with the cell's ``α = dt/τ`` (McMahan: N = 50, analysed at α = 0.1;
Miconi: N = 200, α = 1/30), bias ``b`` = 0 (fixed), ``r = tanh(x)``. One trial, steps t = 0..T−1:

    r_prev = r
    x ← x + α (−x + J r_prev + W_in u_t + b + ξ_t)      ξ_t,i = (perturb_size/α)·U(−1, 1)
    clamp bias units (x_1 = x_10 = 1, x_11 = −1); r = tanh(x); z_t = r_0  (or W_out r)
    δx = x − x̄;   x̄ ← a x̄ + (1 − a) x                    (a = trace_rate = 0.05)
    e_ij += S(r_prev,j, δx_i)                            (t > 2 and t < trial length)

``ξ_t,i`` is non-zero with probability ``perturb_prob`` per neuron and step, only for t > 3 and
inside the trial (Miconi's ``numiter > 3``). α scaling: ``perturb_size`` is the kick on x, so the
drive gets ``perturb_size/α`` and Miconi's ALPHAMODUL = 30 at α = dt/τ = 1/30 is perturb_size = 1
at any α (a drive-unit constant would kick x by 3 at McMahan's α = 0.1). ``perturb_prob`` stays
per step (Miconi's 0.003 per 1-ms step is 0.09 per τ; at α = 0.1 the default gives 0.03 per τ).
Eligibility ``S`` (static ``eligibility``): ``"product_cubed"`` (default: the eLife equation,
McMahan's eq. 3 and both net.cpp files, ``incr = rprev·delta_x; hebb += incr³``)
``(r_prev,j δx_i)³``; ``"delta_cubed"`` ``r_prev,j δx_i³`` (the alternative net.cpp's comments
mention, not used there). x̄ starts each trial at x_0 (net.cpp carries it over from the previous trial;
the difference decays as a³ ≈ 1e-4 before the first trace step). e starts at 0 each trial.

End of trial, trial type k, target s = ±1, L = trial length, W = min(eval_window, L):

    err = (1/W) Σ_{t=L−W}^{L−1} |z_t − s|
    ΔJ = clip(−η [R̄_k] e (err − R̄_k), −max_dw, max_dw)    if trial ≥ warmup_trials
    R̄_k ← β R̄_k + (1 − β) err                              (β = baseline_rate = 0.75, R̄(0) = 0)

The factor ``[R̄_k]`` is in both net.cpp files (Miconi: "this last multiplication may help to
stabilize learning") but not in the eLife equation nor McMahan's eq. 4: static ``baseline_factor``
(default True: the code that trained Miconi's and McMahan's networks; False is the equation).
It matters: on RDM (T = 750, noise 0.1, 4 seeds) it is 4/4 to criterion with it, 3/4 without
(one member's saturated output unit stays wrong; the factor weights the trial types with the
large error up). Trial type k = 2·context + [s > 0] (RDM: k = sign; CDI: Miconi's 4
types, context × sign of the attended modality); types are sampled, not cycled (net.cpp: trial % 4).
Only J (``W_rec``) learns; W_in, b (and W_out) stay at their initial values. net.cpp zeroes
W_in's row 0 (the output unit sees no input): done here in ``output="unit"`` mode.

Output and ``network(state)``: ``{"cell": {"params": {"W_in", "W_rec" (= J), "b"}},
"readout": {"params": {"W_out"}}}``. The readout acts on the **rate** r (build the cell with
``output="rate"``, required); ``output="unit"`` (default) reads z = r_0 = tanh(x_0), stored as
``W_out = e_0ᵀ`` (one-hot row); ``output="readout"`` uses the given ``readout`` (fixed) on r.
Analysis of the CTRNN must apply the bias clamp, as McMahan et al. did (``BIAS_UNITS``).

Defaults are Miconi's selectiveint constants: η = 0.01, perturb_prob = 0.003,
perturb_size = 1, a = 0.05, β = 0.75, max_dw = 2e-4, warm-up 101 trials (``numtrial > 100``),
eval_window 200, x_0 ~ 0.1·U(−1, 1), gain 1.5 (use ``CTRNN(N, activation="tanh",
weight_init="uniform", input_scale=1.0, output="rate")`` for J ~ N(0, g²/N), W_in ~ U(−1, 1)).
McMahan's own values are unknown (not given in the paper or the authors' code).

One ``update`` = ``trials_per_update`` trials in sequence (``lax.scan``), trial i with key
``split(key, trials_per_update)[i]`` split into ``(trial, x_0, perturbation)`` keys; ``metrics["loss"]``
is the mean trial error. ``evaluate`` runs BPTT's validation set (same keys) without perturbations:
``accuracy`` (sign of z at the last step, ``task.accuracy``) and ``loss`` (mean trial error).
Budget seen on RDM (noise 0.1, 150 steps, N = 50, W_in ~ U(−3, 3), defaults): ≥ 90 % after
~7,000–24,000 trials for 7 of 8 seeds (tests/test_hebbian.py); one seed's saturated output unit
never learns. With W_in ~ U(−1, 1) learning is slower and less reliable.

Configuration tiers:
  static (factory arguments): cell, task, readout, output, clamp_bias, eligibility,
    baseline_factor, trials_per_update, num_validation_trials.
  sweepable (:class:`HebbianHParams`): every constant above, gain and the task params.
  state (:class:`HebbianState`): network params, per-type baselines R̄ [K], trial count.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.cells import CTRNN, init_params
from jaxrnn.models.heads import LinearReadout
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.registry import register_rule

BIAS_UNITS = (1, 10, 11)
BIAS_VALUES = (1.0, 1.0, -1.0)
FIRST_PERTURBED_STEP = 4  # net.cpp: numiter > 3
FIRST_TRACE_STEP = 3  # net.cpp: numiter > 2
ELIGIBILITY = ("product_cubed", "delta_cubed")
OUTPUTS = ("unit", "readout")


@struct.dataclass(kw_only=True)
class HebbianHParams:
    """Sweepable hyper-parameters of :func:`hebbian` (all pytree leaves; see module docstring).

    Attributes:
      learning_rate: η (0.01).
      perturb_prob: probability that a neuron is perturbed at a step (0.003).
      perturb_size: max |kick| on x of a perturbation; the drive gets ``perturb_size/α`` (1.0).
      trace_rate: a of the running mean x̄ ← a x̄ + (1 − a) x (0.05).
      baseline_rate: β of the error baseline R̄_k ← β R̄_k + (1 − β) err (0.75).
      max_dw: clip of each weight change per trial (2e-4).
      warmup_trials: trials (int32) before J starts to change (101).
      eval_window: last steps of the trial (int32) whose error is averaged (200).
      init_state_scale: x_0 ~ init_state_scale·U(−1, 1) per trial (0.1).
      gain: recurrent gain g of the initial J (Miconi: 1.5).
      task: the task's params.
    """

    learning_rate: jax.Array = hparam(0.01)
    perturb_prob: jax.Array = hparam(0.003)
    perturb_size: jax.Array = hparam(1.0)
    trace_rate: jax.Array = hparam(0.05)
    baseline_rate: jax.Array = hparam(0.75)
    max_dw: jax.Array = hparam(2e-4)
    warmup_trials: jax.Array = hparam(101, dtype=jnp.int32)
    eval_window: jax.Array = hparam(200, dtype=jnp.int32)
    init_state_scale: jax.Array = hparam(0.1)
    gain: jax.Array = hparam(1.5)
    task: Any


@struct.dataclass
class HebbianState:
    """Network params, per-trial-type error baselines ``R̄[K]`` and trials done (int32)."""

    params: Any
    baseline: jax.Array
    trial: jax.Array


def clamp_bias_units(x: jax.Array) -> jax.Array:
    """``x`` with the bias units set: ``x_1 = x_10 = 1, x_11 = −1`` (Miconi's net.cpp)."""
    return x.at[jnp.array(BIAS_UNITS)].set(jnp.array(BIAS_VALUES, x.dtype))


def eligibility_increment(r_prev: jax.Array, delta_x: jax.Array, kind: str = "product_cubed") -> jax.Array:
    """``[N, N]`` increment of e: ``(δx_i r_j)³`` or ``δx_i³ r_j`` (row i post, column j pre)."""
    if kind == "product_cubed":
        return jnp.outer(delta_x, r_prev) ** 3
    return jnp.outer(delta_x**3, r_prev)


def eligibility_trace(r_prev: jax.Array, delta_x: jax.Array, kind: str = "product_cubed") -> jax.Array:
    """``e = Σ_t S(r_prev[t], δx[t])``, ``[N, N]``, from ``r_prev[T, N]`` and ``δx[T, N]``.

    Both supralinear forms factorise over (i, j): ``(δx_i r_j)³ = δx_i³ r_j³``, so the sum over
    steps is one matrix product, ``e = (δx³)ᵀ r_prev³`` (``"product_cubed"``) or
    ``(δx³)ᵀ r_prev`` (``"delta_cubed"``), instead of an ``[N, N]`` update at every step.
    Steps that must not count are passed with ``δx = 0``.
    """
    pre = r_prev**3 if kind == "product_cubed" else r_prev
    return jnp.matmul((delta_x**3).T, pre, precision=jax.lax.Precision.HIGHEST)


def sample_perturbations(key: jax.Array, hp: HebbianHParams, num_steps: int, hidden: int, alpha: float,
                         trial_length: jax.Array) -> jax.Array:
    """``ξ[T, N]``, the drive perturbations of one trial (zero for t ≤ 3 and t ≥ trial length).

    One draw ``v = uniform(key, [T, N])`` decides both: neuron i is perturbed at t iff
    ``v < p`` (``p = perturb_prob``), by ``perturb_size/α · (2 v/p − 1)``. Given ``v < p``,
    ``v/p ~ U(0, 1)``, so this is exactly net.cpp's Bernoulli(p) hit with an independent
    ``U(−1, 1)`` size, at half the random numbers (the draws dominate the cost of a trial).
    """
    v = jax.random.uniform(key, (num_steps, hidden))
    p = hp.perturb_prob
    steps = jnp.arange(num_steps)[:, None]
    on = (v < p) & (steps >= FIRST_PERTURBED_STEP) & (steps < trial_length)
    return jnp.where(on, (2.0 * v / jnp.maximum(p, 1e-30) - 1.0) * (hp.perturb_size / alpha), 0.0)


def run_trial(params: Any, x0: jax.Array, inputs: jax.Array, perturbation: jax.Array, trial_length: jax.Array,
              trace_rate: jax.Array, *, alpha: float, clamp: bool, output: str = "unit",
              readout=None, eligibility: str = "product_cubed", trace: bool = True):
    """One trial of the perturbed network: ``(z[T, O], e[N, N])`` (``e`` is None if not ``trace``).

    Args:
      params: ``{"cell": ..., "readout": ...}`` as returned by ``network``.
      x0: ``[N]`` initial state (clamped here).
      inputs: ``[T, M]``; perturbation: ``[T, N]`` drive perturbations ξ (zeros: none).
      trial_length: steps in the trial; the trace stops accumulating at it.
      trace_rate: a of the running mean x̄.
      alpha, clamp, output, readout, eligibility: static structure (see module docstring).
      trace: accumulate the eligibility trace (False for validation: cheaper).
    """
    p = params["cell"]["params"]
    w_rec, w_in, b = p["W_rec"], p["W_in"], p.get("b", 0.0)
    fix = clamp_bias_units if clamp else (lambda x: x)

    def readout_of(r):
        return r[:1] if output == "unit" else readout.apply(params["readout"], r)

    def step(carry, xs):
        x, x_bar = carry
        u, xi = xs
        r_prev = jnp.tanh(x)
        x = fix(x + alpha * (-x + w_rec @ r_prev + w_in @ u + b + xi))
        r = jnp.tanh(x)
        delta_x = x - x_bar
        x_bar = trace_rate * x_bar + (1.0 - trace_rate) * x
        return (x, x_bar), (readout_of(r), (r_prev, delta_x) if trace else None)

    x0 = fix(x0)
    _, (z, seen) = jax.lax.scan(step, (x0, x0), (inputs, perturbation))
    if not trace:
        return z, None
    r_prev, delta_x = seen
    steps = jnp.arange(inputs.shape[0])[:, None]
    learn = (steps >= FIRST_TRACE_STEP) & (steps < trial_length)
    return z, eligibility_trace(r_prev, jnp.where(learn, delta_x, 0.0), eligibility)


def trial_error(z: jax.Array, target: jax.Array, trial_length: jax.Array, eval_window: jax.Array) -> jax.Array:
    """Mean ``|z_t − target|`` over the last ``min(eval_window, trial_length)`` steps; ``z[T]``."""
    steps = jnp.arange(z.shape[0])
    window = (steps < trial_length) & (steps >= trial_length - eval_window)
    return jnp.sum(jnp.where(window, jnp.abs(z - target), 0.0)) / jnp.sum(window)


def weight_change(e: jax.Array, err: jax.Array, baseline: jax.Array, hp: HebbianHParams,
                  baseline_factor: bool = False) -> jax.Array:
    """``ΔJ = clip(−η [R̄] e (err − R̄), −max_dw, max_dw)`` for one trial of baseline ``R̄``."""
    scale = hp.learning_rate * (baseline if baseline_factor else 1.0)
    return jnp.clip(-scale * e * (err - baseline), -hp.max_dw, hp.max_dw)


def update_baseline(baseline: jax.Array, trial_type: jax.Array, err: jax.Array, rate: jax.Array) -> jax.Array:
    """``R̄_k ← rate·R̄_k + (1 − rate)·err`` for ``k = trial_type``; other types unchanged."""
    return baseline.at[trial_type].set(rate * baseline[trial_type] + (1.0 - rate) * err)


def trial_type_and_target(task, inputs: jax.Array, targets: jax.Array, mask: jax.Array):
    """``(k, s)`` of one trial: ``s`` the target at its last step, ``k = 2·context + [s > 0]``."""
    last = jnp.argmax(mask * jnp.arange(mask.shape[0]))
    target = targets[last, 0]
    contexts = getattr(task, "num_contexts", 0)
    context = jnp.argmax(inputs[0, contexts:2 * contexts]) if contexts else 0
    return (2 * context + (target > 0)).astype(jnp.int32), target


def hebbian(
    cell,
    task,
    *,
    readout=None,
    output: str = "unit",
    clamp_bias: bool | None = None,
    eligibility: str = "product_cubed",
    baseline_factor: bool = True,
    trials_per_update: int = 1,
    num_validation_trials: int = 2000,
) -> LearningRule:
    """Build Miconi's node-perturbation rule for ``cell`` on a supervised decision ``task``.

    Args:
      cell: ``CTRNN(N, activation="tanh", output="rate", ...)``; its α is the time step.
      task: a decision task (``sample``, ``validation_trials``, ``accuracy``, output size 1).
      readout: head on the rate for ``output="readout"``; default ``LinearReadout(1, 0.1)``.
        Ignored (except for its name in ``network``) when ``output="unit"``.
      output: ``"unit"`` (z = r_0, Miconi) or ``"readout"`` (z = W_out r, W_out fixed).
      clamp_bias: clamp units 1, 10, 11 to 1, 1, −1; default on iff N ≥ 12.
      eligibility: ``"product_cubed"`` (eLife) or ``"delta_cubed"`` (net.cpp).
      baseline_factor: multiply ΔJ by R̄_k as net.cpp does (default True; False: the eLife equation).
      trials_per_update: trials per ``update``, applied one after the other (``lax.scan``).
      num_validation_trials: size of the validation set used by ``evaluate``.
    """
    if not isinstance(cell, CTRNN):
        fail("model.cell", type(cell).__name__, "'ctrnn' for rule hebbian")
    if cell.activation != "tanh":
        fail("model.activation", cell.activation, "'tanh' for rule hebbian (Miconi's r = tanh(x))")
    if cell.output != "rate":
        fail("model.output", cell.output, "'rate' for rule hebbian", "the readout acts on r = tanh(x)")
    if getattr(task, "output_size", None) != 1:
        fail("task.name", repr(task), "a supervised task with one output for rule hebbian")
    check_choice("rule.output", output, OUTPUTS)
    check_choice("rule.eligibility", eligibility, ELIGIBILITY)
    check_choice("rule.baseline_factor", baseline_factor, (False, True))
    check_range("rule.trials_per_update", trials_per_update, 1, integer=True)
    check_range("rule.num_validation_trials", num_validation_trials, 1, integer=True)
    hidden, alpha, steps = cell.hidden, float(cell.alpha), task.num_steps
    clamp = hidden >= 12 if clamp_bias is None else clamp_bias
    check_choice("rule.clamp_bias", clamp, (False, True))
    if clamp and hidden < 12:
        fail("rule.clamp_bias", clamp_bias, "False when model.hidden < 12 (bias units are 1, 10, 11)")
    readout = readout if readout is not None else LinearReadout(1, scale=0.1)
    num_types = 2 * max(getattr(task, "num_contexts", 0), 1)
    trial_kw = dict(alpha=alpha, clamp=clamp, output=output, readout=readout, eligibility=eligibility)

    def init(key, hp):
        key_cell, key_readout = jax.random.split(key)
        cell_params = init_params(cell, key_cell, task.input_size, hp.gain)
        if output == "unit":
            inner = dict(cell_params["params"])
            inner["W_in"] = inner["W_in"].at[0].set(0.0)
            cell_params = {**cell_params, "params": inner}
            readout_params = {"params": {"W_out": jax.nn.one_hot(jnp.array([0]), hidden, dtype=jnp.float32)}}
        else:
            readout_params = readout.init(key_readout, jnp.zeros((hidden,), jnp.float32))
        return HebbianState(
            params={"cell": cell_params, "readout": readout_params},
            baseline=jnp.zeros((num_types,), jnp.float32),
            trial=jnp.zeros((), jnp.int32),
        )

    def initial_state(key, hp):
        return hp.init_state_scale * jax.random.uniform(key, (hidden,), jnp.float32, -1.0, 1.0)

    def one_trial(state, key, hp):
        key_trial, key_x0, key_perturb = jax.random.split(key, 3)
        trials = jax.tree.map(lambda a: a[0], task.sample(key_trial, hp.task, 1))
        length = hp.task.trial_length
        xi = sample_perturbations(key_perturb, hp, steps, hidden, alpha, length)
        z, e = run_trial(state.params, initial_state(key_x0, hp), trials.inputs, xi, length, hp.trace_rate,
                         **trial_kw)
        k, target = trial_type_and_target(task, trials.inputs, trials.targets, trials.mask)
        err = trial_error(z[:, 0], target, length, hp.eval_window)
        dw = weight_change(e, err, state.baseline[k], hp, baseline_factor)
        dw = jnp.where(state.trial >= hp.warmup_trials, dw, 0.0)
        cell_params = state.params["cell"]
        inner = {**cell_params["params"], "W_rec": cell_params["params"]["W_rec"] + dw}
        params = {**state.params, "cell": {**cell_params, "params": inner}}
        baseline = update_baseline(state.baseline, k, err, hp.baseline_rate)
        return HebbianState(params=params, baseline=baseline, trial=state.trial + 1), err

    def update(key, state, hp):
        keys = jax.random.split(key, trials_per_update)
        state, errors = jax.lax.scan(lambda s, k: one_trial(s, k, hp), state, keys)
        return state, {"loss": jnp.mean(errors)}

    def evaluate(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.validation_trials(key_trials, hp.task, num_validation_trials)
        x0 = jax.vmap(lambda k: initial_state(k, hp))(jax.random.split(key_x0, num_validation_trials))
        length = hp.task.trial_length
        no_perturbation = jnp.zeros((steps, hidden), jnp.float32)

        def run(x, u):
            return run_trial(state.params, x, u, no_perturbation, length, hp.trace_rate, trace=False,
                             **trial_kw)[0]

        outputs = jax.vmap(run)(x0, trials.inputs)
        _, targets = jax.vmap(lambda u, y, m: trial_type_and_target(task, u, y, m))(
            trials.inputs, trials.targets, trials.mask)
        errors = jax.vmap(trial_error, in_axes=(0, 0, None, None))(outputs[..., 0], targets, length, hp.eval_window)
        return {"accuracy": jnp.mean(task.accuracy(outputs, trials)), "loss": jnp.mean(errors)}

    return LearningRule(init=init, update=update, evaluate=evaluate, network=lambda state: state.params,
                        default_hparams=make_hparams(HebbianHParams, task=task.default_params), name="hebbian")



def _check_hebbian(values):
    check_choice("rule.output", values["output"], OUTPUTS)
    check_choice("rule.eligibility", values["eligibility"], ELIGIBILITY)
    check_choice("rule.baseline_factor", values["baseline_factor"], (False, True))
    if values.get("clamp_bias") is not None:  # None: on iff model.hidden >= 12
        check_choice("rule.clamp_bias", values["clamp_bias"], (False, True))
    check_range("rule.trials_per_update", values["trials_per_update"], 1, integer=True)
    check_range("rule.num_validation_trials", values["num_validation_trials"], 1, integer=True)
    for name in ("learning_rate", "perturb_size", "max_dw", "init_state_scale"):
        check_range(f"rule.{name}", values[name], 0.0)
    for name in ("perturb_prob", "trace_rate", "baseline_rate"):
        check_range(f"rule.{name}", values[name], 0.0, 1.0)
    check_range("rule.warmup_trials", values["warmup_trials"], 0, integer=True)
    check_range("rule.eval_window", values["eval_window"], 1, integer=True)


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.tasks.registry import make

    task, params = make("rdm", num_steps=8)
    rule = hebbian(CTRNN(6, alpha=0.1, activation="tanh", output="rate"), task, readout=LinearReadout(1),
                   num_validation_trials=8)
    return rule, rule.default_hparams.replace(task=params)


register_rule(
    "hebbian",
    hebbian,
    static={"output", "clamp_bias", "eligibility", "baseline_factor", "trials_per_update", "num_validation_trials"},
    hparams_cls=HebbianHParams,
    check=_check_hebbian,
    model_defaults={"activation": "tanh", "output": "rate"},
    example=conformance_example,
)
