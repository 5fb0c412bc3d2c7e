"""Backpropagation through time on supervised trials (McMahan et al. 2021, BPTT networks).

Each update samples a fresh batch of ``batch`` trials, runs the network
``x_{t+1} = cell(x_t, u_t)``, ``y_t = readout(x_{t+1})`` from the initial state
``x_0 = init_state_scale·N(0, 1)`` (one draw shared by every trial of the batch, as in the
authors' code; ``shared_initial_state=False`` draws one per trial), and takes one Adam step on

    L(θ) = mean_b Σ_t mask_bt ‖y_bt − target_bt‖²

(for the decision tasks the first- and last-step loss of the authors' code; they sum over the
batch, we average, which Adam's scale invariance makes immaterial up to its ε).
Only the parameters named in ``trainable`` move (default ``("W_rec",)``: the study trains
J_rec only); the others keep their initial values and no gradient is computed for them.

Speed (CPU): the batch runs as one array with the trial axis innermost
(:func:`~jaxrnn.models.rollout.rollout_trials`); a :class:`~jaxrnn.models.CTRNN` with a
:class:`~jaxrnn.models.LinearReadout` uses the hand-written backward pass of
:func:`~jaxrnn.models.rollout.ctrnn_readout_trials`; and the gradient is accumulated over
chunks of ``trials_per_chunk`` trials, each chunk's forward and backward pass finishing before
the next starts, which keeps a time step's arrays cache-sized when a population is vmapped and
divides the memory for the stored activations by the number of chunks. All three change the
numbers only by float32 rounding (``benchmarks/README.md`` has the measurements).

Configuration tiers:
  static (factory arguments): cell, task, readout, batch, trainable, validation size, remat,
    trials per chunk.
  sweepable (:class:`BPTTHParams`): learning rate, Adam β's, recurrent gain g at init,
    initial-state scale, gradient-clip norm and the task params.
  state (:class:`BPTTState`): network params, Adam moments, update count.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.models.cells import CTRNN, init_params
from jaxrnn.models.ctrnn_fused import FusedKernel
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.trials import batch_outputs, has_fast_path
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.hparams import hparam, make_hparams
from jaxrnn.rules.training import clip_by_global_norm, freeze, mask_gradients, optimizer_step, trainable_mask


@struct.dataclass(kw_only=True)
class BPTTHParams:
    """Sweepable hyper-parameters of :func:`bptt` (all pytree leaves).

    Attributes:
      learning_rate: Adam step size (5e-4 in the study).
      gain: recurrent gain g of the initial ``W_rec`` (see ``jaxrnn.models.init_params``).
      init_state_scale: std of the initial hidden state (0.3 in the study).
      max_grad_norm: global-norm gradient clip; ``inf`` disables it (the study: none).
      task: the task's params (noise, coherence, trial length, ...).
    """

    learning_rate: jax.Array = hparam(5e-4)
    gain: jax.Array = hparam(1.0)
    init_state_scale: jax.Array = hparam(0.3)
    max_grad_norm: jax.Array = hparam(float("inf"))
    task: Any


@struct.dataclass
class BPTTState:
    """Network params, Adam state and the number of updates taken."""

    params: Any
    opt_state: Any
    step: jax.Array


def default_trials_per_chunk(batch: int, max_chunk: int = 128) -> int:
    """The largest divisor of ``batch`` that is at most ``max_chunk`` (500 → 125).

    ``batch`` itself when it is at most ``max_chunk`` or has no divisor in
    ``[max_chunk / 4, max_chunk]`` (chunks much smaller than that cost more in per-step
    overhead than they gain).
    """
    if batch <= max_chunk:
        return batch
    for size in range(max_chunk, max_chunk // 4 - 1, -1):
        if batch % size == 0:
            return size
    return batch


def bptt(
    cell,
    task,
    batch: int = 500,
    *,
    readout=None,
    trainable: tuple[str, ...] | None = ("W_rec",),
    num_validation_trials: int = 2000,
    shared_initial_state: bool = True,
    remat: bool = False,
    trials_per_chunk: int | None = None,
    kernel: str | FusedKernel = "xla",
) -> LearningRule:
    """Build the BPTT rule for ``cell`` on supervised ``task``.

    Args:
      cell: a jaxrnn cell (e.g. ``CTRNN(50)``).
      task: a supervised task with ``sample``, ``validation_trials``, ``loss``, ``accuracy``.
      batch: trials per update (500 in the study).
      readout: output head; default ``LinearReadout(task.output_size, scale=0.1)``.
      trainable: names of the parameters that learn (e.g. ``("W_rec",)``, ``("W_rec", "W_in",
        "W_out")``) or ``None`` for all.
      num_validation_trials: size of the validation set used by ``evaluate``.
      shared_initial_state: one ``x_0`` per batch (authors) vs one per trial.
      remat: checkpoint the time-scan body (less memory, ~1/3 more compute). Not needed, and
        ignored, for a ``CTRNN`` (``output="state"``) with a ``LinearReadout``, whose
        hand-written backward pass already stores only the rates.
      trials_per_chunk: the gradient is summed over chunks of this many trials, one chunk's
        forward and backward pass after the other (must divide ``batch``). Smaller chunks
        need less memory (the stored activations scale with the chunk, not the batch) and,
        for a vmapped population, keep each step's ``[P, N, chunk]`` arrays in cache; larger
        chunks have less per-step overhead. ``None`` (default) takes
        :func:`default_trials_per_chunk` (125 for the study's batch of 500), which on a
        2-core CPU was fastest for populations of ~64 and ~10% slower than one chunk for 16;
        ``trials_per_chunk=batch`` turns chunking off.
      kernel: how a ``CTRNN`` (``output="state"``) with a ``LinearReadout`` runs its time
        loop: ``"xla"`` (default; a ``lax.scan`` with the hand-written backward pass of
        :func:`~jaxrnn.models.rollout.ctrnn_readout_trials`) or ``"pallas"`` (one fused kernel
        per tile of trials, :mod:`jaxrnn.models.ctrnn_fused`; for GPUs, interpreted — slowly
        — elsewhere), or a :class:`~jaxrnn.models.ctrnn_fused.FusedKernel` with its tile
        settings. Same numbers up to float32 rounding (and TF32 products on GPUs, as XLA's).
        ``"xla"`` stays the default until the fused kernel's GPU speed is measured
        (``benchmarks/gpu.py --jobs bptt_fused``).

    Returns:
      The :class:`~jaxrnn.rules.base.LearningRule` bundle.
    """
    check_range("rule.batch", batch, 1, integer=True)
    check_range("rule.num_validation_trials", num_validation_trials, 1, integer=True)
    if trials_per_chunk is None:
        trials_per_chunk = default_trials_per_chunk(batch)
    check_range("rule.trials_per_chunk", trials_per_chunk, 1, batch, integer=True)
    if batch % trials_per_chunk:
        divisors = [d for d in range(1, batch + 1) if batch % d == 0]
        fail("rule.trials_per_chunk", trials_per_chunk, f"a divisor of batch = {batch}: {divisors}")
    num_chunks = batch // trials_per_chunk
    readout = readout if readout is not None else LinearReadout(task.output_size, scale=0.1)
    fused = fused_kernel(kernel, cell, readout)
    hidden = cell.hidden
    names = _param_names(cell, readout, task.input_size)
    if trainable is not None:
        for name in trainable:
            if name not in names:
                fail("rule.trainable", list(trainable), "names of network parameters: " + ", ".join(names))
    adam = optax.scale_by_adam()

    def init_network(key, hp):
        key_cell, key_readout = jax.random.split(key)
        return {
            "cell": init_params(cell, key_cell, task.input_size, hp.gain),
            "readout": readout.init(key_readout, jnp.zeros((hidden,), jnp.float32)),
        }

    def init(key, hp):
        params = init_network(key, hp)
        return BPTTState(params=params, opt_state=adam.init(params), step=jnp.zeros((), jnp.int32))

    def initial_states(key, hp, n):
        shape = (hidden,) if shared_initial_state else (n, hidden)
        x0 = hp.init_state_scale * jax.random.normal(key, shape, jnp.float32)
        return jnp.broadcast_to(x0, (n, hidden))

    def chunk_loss(params, trials, x0):
        return task.loss(batch_outputs(cell, readout, params, x0, trials.inputs, remat=remat, kernel=fused), trials)

    def loss_and_grads(params, mask, trials, x0):
        """Mean loss over the batch and its gradient, summed chunk by chunk."""

        def chunk_value_and_grad(chunk):
            return jax.value_and_grad(lambda p: chunk_loss(freeze(p, mask), *chunk))(params)

        if num_chunks == 1:
            return chunk_value_and_grad((trials, x0))
        chunks = jax.tree.map(lambda a: a.reshape((num_chunks, trials_per_chunk) + a.shape[1:]), (trials, x0))

        def add_chunk(total, chunk):
            return jax.tree.map(jnp.add, total, chunk_value_and_grad(chunk)), None

        zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        (loss, grads), _ = jax.lax.scan(add_chunk, zero, chunks)
        # each chunk's loss is its own mean over trials; equal chunks → the batch mean
        return loss / num_chunks, jax.tree.map(lambda g: g / num_chunks, grads)

    def update(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.sample(key_trials, hp.task, batch)
        x0 = initial_states(key_x0, hp, batch)
        mask = trainable_mask(state.params, trainable)
        loss, grads = loss_and_grads(state.params, mask, trials, x0)
        grads = clip_by_global_norm(mask_gradients(grads, mask), hp.max_grad_norm)
        params, opt_state = optimizer_step(adam, grads, state.opt_state, state.params, hp.learning_rate, mask)
        new_state = BPTTState(params=params, opt_state=opt_state, step=state.step + 1)
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    def evaluate(key, state, hp):
        key_trials, key_x0 = jax.random.split(key)
        trials = task.validation_trials(key_trials, hp.task, num_validation_trials)
        x0 = initial_states(key_x0, hp, num_validation_trials)
        outputs = batch_outputs(cell, readout, state.params, x0, trials.inputs, kernel=fused)
        return {
            "accuracy": jnp.mean(task.accuracy(outputs, trials)),
            "loss": task.loss(outputs, trials),
        }

    return LearningRule(
        init=init,
        update=update,
        evaluate=evaluate,
        network=lambda state: state.params,
        default_hparams=make_hparams(BPTTHParams, task=task.default_params),
        name="bptt",
    )


KERNELS = ("xla", "pallas")


def fused_kernel(kernel: str | FusedKernel, cell, readout) -> FusedKernel | None:
    """The fused kernel's settings for ``rule.kernel`` (``None`` for the XLA path).

    Raises ``ValueError`` for an unknown name, for ``"pallas"`` with a cell and read-out the
    kernel does not run, or on a TPU (the kernel is written for Pallas' Triton backend). On a
    CPU backend ``"pallas"`` runs the Pallas interpreter, orders of magnitude slower than
    ``"xla"``, and says so with a ``UserWarning`` (a ``FusedKernel`` passed explicitly, as the
    tests do, is taken as meant).
    """
    if isinstance(kernel, FusedKernel):
        fused = kernel
    else:
        check_choice("rule.kernel", kernel, KERNELS)
        fused = FusedKernel() if kernel == "pallas" else None
    if fused is None:
        return None
    if not has_fast_path(cell, readout):
        fail(
            "rule.kernel", "pallas", "'xla' for this model",
            f"the fused kernel runs only a CTRNN with output 'state' and a linear read-out; got {cell!r} "
            f"and {readout!r}",
        )
    backend = jax.default_backend()
    if backend == "tpu" and not fused.interpreted():
        fail("rule.kernel", "pallas", "'xla' on a TPU", "the fused kernel is written for Pallas' Triton (GPU) backend")
    if backend == "cpu" and isinstance(kernel, str):
        warnings.warn(
            "rule.kernel = 'pallas' on the CPU runs the Pallas interpreter (for tests; far slower than 'xla')",
            stacklevel=3,
        )
    return fused


def _param_names(cell, readout, input_size: int) -> list[str]:
    shapes = jax.eval_shape(
        lambda k: {
            "cell": init_params(cell, k, input_size),
            "readout": readout.init(k, jnp.zeros((cell.hidden,), jnp.float32)),
        },
        jax.random.PRNGKey(0),
    )
    paths = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return sorted({getattr(p[-1], "key", str(p[-1])) for p, _ in paths})


def conformance_example():
    """A tiny instance ``(rule, hparams)`` for :func:`jaxrnn.rules.conformance.check_rule`."""
    from jaxrnn.tasks.registry import make

    task, params = make("rdm", num_steps=8)
    rule = bptt(CTRNN(6, alpha=0.1, activation="shifted_tanh", output="state"), task, batch=4,
                readout=LinearReadout(1), num_validation_trials=8)
    return rule, rule.default_hparams.replace(task=params)
