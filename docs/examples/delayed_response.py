"""A supervised task written from scratch and registered: remember the sign of a pulse.

Spec:

- **Inputs** ``u_t`` (``[T, 1]``): a pulse ``s · pulse`` during the first ``pulse_steps`` steps,
  ``s ~ ±1``, plus white noise ``noise_std · ε_t`` on every step.
- **Target**: ``s`` at the last step; the loss reads the first and the last step only
  (``mask``), ``L = y_0² + (y_{T−1} − s)²``.
- **Accuracy**: the sign of the last output equals ``s``.

Tiers: ``num_steps`` and ``pulse_steps`` fix shapes (static, constructor arguments);
``noise_std`` and ``pulse`` are sweepable (pytree leaves of :class:`DelayedResponseParams`).
"""

import jax
import jax.numpy as jnp
from flax import struct

import jaxrnn
from jaxrnn.tasks import Trials, masked_squared_error, register


@struct.dataclass
class DelayedResponseParams:
    """Sweepable parameters (pytree leaves).

    Attributes:
      noise_std: std of the white input noise on every step.
      pulse: amplitude of the pulse.
    """

    noise_std: jax.Array = 0.1
    pulse: jax.Array = 1.0


class DelayedResponse:
    """Remember the sign of an early pulse until the end of the trial.

    Args:
      num_steps: trial length T (static: fixes shapes).
      pulse_steps: steps the pulse lasts (static).
    """

    input_size = 1
    output_size = 1

    def __init__(self, num_steps: int = 20, pulse_steps: int = 3):
        if not 1 <= pulse_steps < num_steps:  # house style: name the field, the value, what is allowed
            raise ValueError(f"task.pulse_steps = {pulse_steps!r} is not allowed: must be in [1, num_steps)")
        self.num_steps, self.pulse_steps = int(num_steps), int(pulse_steps)

    @property
    def default_params(self) -> DelayedResponseParams:
        return DelayedResponseParams(noise_std=jnp.float32(0.1), pulse=jnp.float32(1.0))

    def check_params(self, params: DelayedResponseParams) -> None:
        if float(params.noise_std) < 0:
            raise ValueError(f"task.noise_std = {float(params.noise_std)} is not allowed: must be >= 0")

    def cast_params(self, params: DelayedResponseParams) -> DelayedResponseParams:
        return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)

    def trial(self, key, params, sign):
        steps = jnp.arange(self.num_steps)
        noise = params.noise_std * jax.random.normal(key, (self.num_steps, 1))
        inputs = jnp.where(steps[:, None] < self.pulse_steps, sign * params.pulse, 0.0) + noise
        targets = jnp.where(steps == self.num_steps - 1, sign, 0.0)[:, None]
        mask = ((steps == 0) | (steps == self.num_steps - 1)).astype(jnp.float32)
        return Trials(inputs=inputs.astype(jnp.float32), targets=targets.astype(jnp.float32), mask=mask)

    def sample(self, key, params, batch: int) -> Trials:
        key_sign, key_noise = jax.random.split(key)
        signs = jax.random.rademacher(key_sign, (batch,), dtype=jnp.float32)
        return jax.vmap(self.trial, in_axes=(0, None, 0))(jax.random.split(key_noise, batch), params, signs)

    def validation_trials(self, key, params, num_trials: int = 200) -> Trials:
        signs = jnp.where(jnp.arange(num_trials) % 2 == 0, 1.0, -1.0)  # balanced
        return jax.vmap(self.trial, in_axes=(0, None, 0))(jax.random.split(key, num_trials), params, signs)

    @staticmethod
    def loss(outputs, trials: Trials):
        return jnp.mean(masked_squared_error(outputs, trials))

    @staticmethod
    def accuracy(outputs, trials: Trials):
        return (jnp.sign(outputs[:, -1, 0]) == trials.targets[:, -1, 0]).astype(jnp.float32)


if "delayed-response" not in jaxrnn.registered():
    register("delayed-response", DelayedResponse)
