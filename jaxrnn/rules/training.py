"""Training utilities shared by the gradient-based rules: which leaves learn, clipping, the step.

A rule's gradient step, for the leaves a ``trainable`` mask selects (the others keep their
initial values and get no gradient), is

    g     = ∇_θ L(θ)              with stop_gradient on frozen leaves (:func:`freeze`),
                                  then exact zeros there (:func:`mask_gradients`)
    g     ← g · min(1, c / ‖g‖)   global-norm clip, ‖g‖² = Σ_leaves Σ g²  (:func:`clip_by_global_norm`)
    d, s  = optimizer.update(g, s, θ)            an optax transformation without the step size
                                                 (``scale_by_adam``, ``identity`` for SGD)
    θ     ← θ − η · d             on trainable leaves only (:func:`descend`, :func:`optimizer_step`)

with ``c`` (``max_grad_norm``) and ``η`` (``learning_rate``) leaves of the rule's ``HParams``
pytree, so a population sweeping them compiles once. Used by :mod:`~jaxrnn.rules.bptt`,
:mod:`~jaxrnn.rules.controller` (closed and open loop), :mod:`~jaxrnn.rules.ppo`,
:mod:`~jaxrnn.rules.recurrent_sac` and (the mask alone) :mod:`~jaxrnn.rules.ga`.

Why not optax's own pieces (each would change the numbers or the swept tier):

- ``optax.clip_by_global_norm(c)`` computes ``(g / ‖g‖) · c``; :func:`clip_by_global_norm`
  computes ``g · (c / ‖g‖)``, which rounds differently in float32 whenever ``c`` is not a power
  of two (2,000 random gradients clipped at ``c = 3``: 30 % of their elements differed in the
  last bit), so stored runs would change.
- ``optax.masked`` / ``optax.multi_transform`` drop the optimiser state of frozen leaves: a
  different ``opt_state`` pytree, so checkpoints written earlier would not resume.
- ``optax.scale_by_learning_rate(η)`` / ``optax.inject_hyperparams`` make η a closure constant or
  part of the optimiser state; here it is a member's hyper-parameter leaf, applied by
  :func:`descend` (STYLE 2, optax issue 577).
- ``optax.apply_if_finite`` skips non-finite steps *inside* a rule and keeps going; the population
  runner instead freezes and flags a member whose state or loss turns non-finite
  (:mod:`jaxrnn.population.program`, the one place where divergence is handled).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = ["clip_by_global_norm", "descend", "freeze", "mask_gradients", "masked_value_and_grad", "optimizer_step",
           "trainable_mask"]


def trainable_mask(params: Any, trainable: tuple[str, ...] | None) -> Any:
    """A pytree of bools shaped like ``params``: True for leaves whose name is in ``trainable``.

    A leaf's name is the last key of its path (``params["cell"]["params"]["W_rec"]`` → ``"W_rec"``).
    ``trainable=None`` marks every leaf trainable. The bools are Python values (static), so
    the functions below branch on them at trace time and frozen leaves cost nothing.
    """

    def is_trainable(path, _):
        if trainable is None:
            return True
        name = getattr(path[-1], "key", str(path[-1]))
        return name in trainable

    return jax.tree_util.tree_map_with_path(is_trainable, params)


def freeze(params: Any, mask: Any) -> Any:
    """``params`` with ``jax.lax.stop_gradient`` on the leaves where ``mask`` is False.

    Differentiating through the result gives exact zeros for those leaves without computing
    them (no backward work and no stored activations on their behalf).
    """
    return jax.tree.map(lambda p, m: p if m else jax.lax.stop_gradient(p), params, mask)


def mask_gradients(grads: Any, mask: Any) -> Any:
    """``grads`` with exact zeros on the leaves where ``mask`` is False (shapes unchanged)."""
    return jax.tree.map(lambda g, m: g if m else jnp.zeros_like(g), grads, mask)


def masked_value_and_grad(objective, params: Any, mask: Any, *, has_aux: bool = False):
    """``jax.value_and_grad(objective)(params)`` for the leaves where ``mask`` is True.

    Frozen leaves enter ``objective`` under :func:`freeze` (their gradient is never computed)
    and come back as exact zeros. Returns ``(value, grads)``, ``value = (loss, aux)`` with
    ``has_aux``.
    """
    value, grads = jax.value_and_grad(lambda p: objective(freeze(p, mask)), has_aux=has_aux)(params)
    return value, mask_gradients(grads, mask)


def clip_by_global_norm(grads: Any, max_norm: jax.Array) -> Any:
    """``grads · min(1, c / max(‖grads‖, 1e-12))`` with ``‖·‖`` the global L2 norm over all leaves.

    ``max_norm`` (``c``) may be a traced scalar (a swept hyper-parameter); ``inf`` leaves
    ``grads`` unchanged. Not ``optax.clip_by_global_norm``, which rounds differently (module
    docstring).
    """
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12))
    return jax.tree.map(lambda g: g * scale, grads)


def descend(params: Any, direction: Any, learning_rate: jax.Array, mask: Any = None) -> Any:
    """``θ − η · d`` leafwise; leaves where ``mask`` is False (``mask=None``: none) stay as they are.

    ``learning_rate`` (``η``) may be a traced scalar: a member's hyper-parameter leaf.
    """
    if mask is None:
        return jax.tree.map(lambda p, d: p - learning_rate * d, params, direction)
    return jax.tree.map(lambda p, d, m: p - learning_rate * d if m else p, params, direction, mask)


def optimizer_step(optimizer: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any,
                   learning_rate: jax.Array, mask: Any = None) -> tuple[Any, Any]:
    """One step ``θ ← θ − η · d`` with ``d, s = optimizer.update(grads, s, θ)``.

    ``optimizer`` gives the direction without the step size (``optax.scale_by_adam()``,
    ``optax.identity()`` for SGD); ``mask`` keeps frozen leaves in place (their optimiser state
    still advances, on the zero gradients :func:`mask_gradients` gives them). Clip ``grads``
    before the call. Returns ``(params, opt_state)``.
    """
    direction, opt_state = optimizer.update(grads, opt_state, params)
    return descend(params, direction, learning_rate, mask), opt_state
