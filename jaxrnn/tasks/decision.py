"""Perceptual decision tasks of McMahan, Kleinman & Kao (NeurIPS 2021): RDM, CDI and N-CDI.

Spec (as in the authors' code, ``task/williams.py`` and ``task/Ncontext.py``):

- **Observation / inputs** ``u_t`` (``[T, M]``). RDM (``M = 1``): ``u_t = s·μ + σ·ε_t``.
  N-CDI with ``n`` contexts (``M = 2n``, CDI is ``n = 2``): channels ``0..n-1`` are sensory,
  ``u_{j,t} = s_j·μ + σ·ε_{j,t}`` with one coherence ``μ`` shared by all channels and an
  independent sign ``s_j`` per channel; channels ``n..2n-1`` are a one-hot context cue (1 on
  the cued channel for the whole trial). ``μ ~ U(0, coherence_max)``, ``s ~ ±1``,
  ``ε ~ N(0, 1)``; ``σ = noise_std`` is a standard deviation (the authors' "variance" argument).
- **Target**: the sign of the cued channel's mean, ``s_{j*}``; the loss reads the output at
  the first step (target 0) and at the last step (target ``s_{j*}``) only,
  ``L = (y_0 − 0)² + (y_{T−1} − s)²`` — encoded by ``Trials.mask``.
- **Start state**: none (the network's initial state belongs to the model/rule).
- **Termination**: fixed length ``trial_length ≤ num_steps`` (750 steps = 75 time units at
  ``α = dt/τ = 0.1``); steps past ``trial_length`` have zero input and zero mask.
- **Accuracy**: a trial is wrong iff the sign of the output at its last step is opposite to the
  target (the authors' ``|target − sign(y_T)| > 1``; an output of exactly 0 counts as correct).
- **Validation set**: ``num_trials`` (2,000) trials whose coherences cycle through
  ``linspace(0, val_coherence_max, 20)`` with ``val_coherence_max = 0.1875`` (the authors'
  validation value, vs 0.1857 for training).
- **Pulse variant**: ``stimulus_end < trial_length`` switches the sensory channels (signal and
  noise) off from that step on while the context cue stays on — the probe for transient vs
  stable integration.

Configuration tiers: ``num_contexts`` and ``num_steps`` are static (they fix shapes);
every field of :class:`DecisionParams` is a sweepable pytree leaf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrnn._checks import check_range
from jaxrnn.tasks.base import Trials, cast_like, masked_squared_error

COHERENCE_MAX = 0.1857
VALIDATION_COHERENCE_MAX = 0.1875
NUM_VALIDATION_COHERENCES = 20


@struct.dataclass
class DecisionParams:
    """Sweepable parameters of a decision task (all pytree leaves).

    Attributes:
      noise_std: std σ of the white input noise on each sensory channel (≥ 0).
      coherence_max: training coherences are drawn from ``U(0, coherence_max)``.
      trial_length: steps in a trial (int32, ``1 ≤ trial_length ≤ num_steps``).
      stimulus_end: first step with the sensory input off (pulse variant); ``≥ trial_length``
        means the stimulus stays on for the whole trial.
      val_coherence_max: largest coherence of the validation grid.
    """

    noise_std: jax.Array = 0.5
    coherence_max: jax.Array = COHERENCE_MAX
    trial_length: jax.Array = 750
    stimulus_end: jax.Array = 750
    val_coherence_max: jax.Array = VALIDATION_COHERENCE_MAX


class DecisionTask:
    """N-context decision task; ``num_contexts = 0`` is the single-channel RDM task.

    Args:
      num_contexts: 0 for RDM, ``n ≥ 2`` for N-CDI (static: fixes the input size ``2n``).
      num_steps: maximum trial length ``T`` (static: fixes the array shapes).
    """

    output_size = 1

    def __init__(self, num_contexts: int = 0, num_steps: int = 750):
        check_range("task.num_contexts", num_contexts, 0, integer=True)
        if num_contexts == 1:
            check_range("task.num_contexts", num_contexts, 2, integer=True)
        check_range("task.num_steps", num_steps, 1, integer=True)
        self.num_contexts = int(num_contexts)
        self.num_steps = int(num_steps)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_contexts={self.num_contexts}, num_steps={self.num_steps})"

    @property
    def num_channels(self) -> int:
        """Number of sensory channels (1 for RDM)."""
        return max(self.num_contexts, 1)

    @property
    def input_size(self) -> int:
        return 1 if self.num_contexts == 0 else 2 * self.num_contexts

    @property
    def default_params(self) -> DecisionParams:
        return DecisionParams(
            noise_std=jnp.float32(0.5),
            coherence_max=jnp.float32(COHERENCE_MAX),
            trial_length=jnp.int32(self.num_steps),
            stimulus_end=jnp.int32(self.num_steps),
            val_coherence_max=jnp.float32(VALIDATION_COHERENCE_MAX),
        )

    def check_params(self, params: DecisionParams) -> None:
        """Eager validation (before any compilation); raises ``ValueError`` naming the field."""
        check_range("task.noise_std", params.noise_std, 0.0)
        check_range("task.coherence_max", params.coherence_max, 0.0)
        check_range("task.val_coherence_max", params.val_coherence_max, 0.0)
        check_range("task.trial_length", params.trial_length, 1, self.num_steps, integer=True)
        check_range("task.stimulus_end", params.stimulus_end, 0, integer=True)

    def cast_params(self, params: DecisionParams) -> DecisionParams:
        """Params with the default dtypes (float32 / int32)."""
        return cast_like(params, self.default_params)

    def trial(self, key: jax.Array, params: DecisionParams, coherence: jax.Array) -> Trials:
        """One trial with the given coherence μ; returns unbatched ``Trials`` (``[T, ·]``)."""
        key_sign, key_context, key_noise = jax.random.split(key, 3)
        n = self.num_channels
        signs = jax.random.rademacher(key_sign, (n,), dtype=jnp.float32)
        context = jax.random.randint(key_context, (), 0, n)
        steps = jnp.arange(self.num_steps)
        valid = steps < params.trial_length
        stimulus_on = valid & (steps < params.stimulus_end)
        noise = params.noise_std * jax.random.normal(key_noise, (self.num_steps, n), jnp.float32)
        sensory = (signs * coherence + noise) * stimulus_on[:, None]
        if self.num_contexts:
            cue = jax.nn.one_hot(context, n, dtype=jnp.float32)[None, :] * valid[:, None]
            inputs = jnp.concatenate([sensory, cue], axis=-1)
        else:
            inputs = sensory
        last = params.trial_length - 1
        targets = jnp.where(steps == last, signs[context], 0.0)[:, None].astype(jnp.float32)
        mask = ((steps == 0) | (steps == last)).astype(jnp.float32)
        return Trials(inputs=inputs, targets=targets, mask=mask)

    def sample(self, key: jax.Array, params: DecisionParams, batch: int) -> Trials:
        """``batch`` training trials, coherence ``μ ~ U(0, coherence_max)`` each."""
        key_coherence, key_trials = jax.random.split(key)
        coherence = params.coherence_max * jax.random.uniform(key_coherence, (batch,))
        keys = jax.random.split(key_trials, batch)
        return jax.vmap(self.trial, in_axes=(0, None, 0))(keys, params, coherence)

    def validation_trials(self, key: jax.Array, params: DecisionParams, num_trials: int = 2000) -> Trials:
        """The validation set: coherences cycle through ``linspace(0, val_coherence_max, 20)``."""
        grid = jnp.linspace(0.0, 1.0, NUM_VALIDATION_COHERENCES) * params.val_coherence_max
        coherence = grid[jnp.arange(num_trials) % NUM_VALIDATION_COHERENCES]
        keys = jax.random.split(key, num_trials)
        return jax.vmap(self.trial, in_axes=(0, None, 0))(keys, params, coherence)

    @staticmethod
    def loss(outputs: jax.Array, trials: Trials) -> jax.Array:
        """Mean over the batch of ``(y_0)² + (y_{T−1} − s)²``; ``outputs`` is ``[B, T, 1]``."""
        return jnp.mean(masked_squared_error(outputs, trials))

    @staticmethod
    def accuracy(outputs: jax.Array, trials: Trials) -> jax.Array:
        """``[B]`` float32: 1 where the sign of the last-step output is not opposite to the target."""
        steps = jnp.arange(trials.mask.shape[-1])
        last = jnp.argmax(trials.mask * steps, axis=-1)
        take = jax.vmap(lambda x, t: x[t])
        y_last = take(outputs[..., 0], last)
        target = take(trials.targets[..., 0], last)
        return (jnp.abs(target - jnp.sign(y_last)) <= 1.0).astype(jnp.float32)


class RDM(DecisionTask):
    """Random-dots motion: one noisy sensory channel, target its sign (``M = 1``)."""

    def __init__(self, num_steps: int = 750):
        super().__init__(num_contexts=0, num_steps=num_steps)

    def __repr__(self) -> str:
        return f"RDM(num_steps={self.num_steps})"


class NCDI(DecisionTask):
    """N-context dependent integration (``M = 2n`` inputs); ``NCDI(2)`` is CDI."""

    def __init__(self, num_contexts: int = 2, num_steps: int = 750):
        check_range("task.num_contexts", num_contexts, 2, integer=True)
        super().__init__(num_contexts=num_contexts, num_steps=num_steps)


def CDI(num_steps: int = 750) -> NCDI:  # noqa: N802 - named like the classes it builds
    """Context-dependent integration: ``NCDI(2)``."""
    return NCDI(num_contexts=2, num_steps=num_steps)
