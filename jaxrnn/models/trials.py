"""A cell and its read-out on a batch of supervised trials, by the fastest implementation the pair allows.

One trial is ``x_t = cell(x_{t−1}, u_t)``, ``y_t = readout(x_t)`` for ``t = 1 … T`` from
``x_0``; :func:`batch_outputs` runs ``B`` of them (``inputs[B, T, M]``, ``x0[B, N]`` →
``outputs[B, T, O]``) with the trial axis innermost and picks the implementation:

- a :class:`~jaxrnn.models.CTRNN` with ``output="state"`` and a
  :class:`~jaxrnn.models.LinearReadout` (:func:`has_fast_path`) takes
  :func:`~jaxrnn.models.rollout.ctrnn_readout_trials` (``lax.scan`` with a hand-written backward
  pass) or, given a :class:`~jaxrnn.models.ctrnn_fused.FusedKernel`, the fused Pallas kernel
  :func:`~jaxrnn.models.ctrnn_fused.ctrnn_readout_fused`;
- any other pair takes :func:`~jaxrnn.models.rollout.rollout_trials` (autodiff of the scan).

All give the numbers of ``jax.vmap(network_outputs)`` up to float32 rounding. Used by the
supervised rules (:mod:`~jaxrnn.rules.bptt`, :mod:`~jaxrnn.rules.ga`).
"""

from __future__ import annotations

from typing import Any

import jax

from jaxrnn.models.cells import CTRNN
from jaxrnn.models.ctrnn_fused import FusedKernel, ctrnn_readout_fused
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.rollout import ctrnn_readout_trials, rollout, rollout_trials

__all__ = ["batch_outputs", "has_fast_path", "network_outputs"]


def network_outputs(cell, readout, params: Any, x0: jax.Array, inputs: jax.Array, *, remat: bool = False):
    """Outputs ``[T, O]`` and states ``[T, N]`` of one trial (``inputs[T, M]``) from state ``x0``.

    ``params = {"cell": ..., "readout": ...}``; the plain scan of :func:`~jaxrnn.models.rollout`,
    the reference the batched implementations are tested against.
    """
    states, hidden = rollout(cell, params["cell"], x0, inputs, remat=remat)
    outputs = jax.vmap(lambda h: readout.apply(params["readout"], h))(hidden)
    return outputs, states


def has_fast_path(cell, readout) -> bool:
    """Whether ``(cell, readout)`` is a ``CTRNN`` (``output="state"``) with a ``LinearReadout``."""
    return type(cell) is CTRNN and cell.output == "state" and type(readout) is LinearReadout


def batch_outputs(cell, readout, params: Any, x0: jax.Array, inputs: jax.Array, *, remat: bool = False,
                  kernel: FusedKernel | None = None):
    """Outputs ``[B, T, O]`` of ``B`` trials (``inputs[B, T, M]``) from states ``x0[B, N]``.

    The numbers of ``jax.vmap(network_outputs)`` up to float32 rounding, computed with the
    trial axis innermost; a ``CTRNN`` (``output="state"``) with a ``LinearReadout`` takes
    :func:`~jaxrnn.models.rollout.ctrnn_readout_trials` (hand-written backward pass, which
    stores only the rates, so ``remat`` does not apply to it), or with ``kernel`` the fused
    Pallas kernel :func:`~jaxrnn.models.ctrnn_fused.ctrnn_readout_fused`.
    """
    if has_fast_path(cell, readout):
        if kernel is not None:
            return ctrnn_readout_fused(cell, params["cell"], params["readout"], x0, inputs, kernel=kernel)
        return ctrnn_readout_trials(cell, params["cell"], params["readout"], x0, inputs)
    head = lambda h: readout.apply(params["readout"], h)  # noqa: E731
    return rollout_trials(cell, params["cell"], x0, inputs, readout=head, remat=remat)
