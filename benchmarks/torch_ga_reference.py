"""PyTorch reference for ``learning_rules.py``: one GA generation as the study ran it.

Written from McMahan et al.'s ``genetic.py`` (bmcmahan2016/RNN_Learning_Rules, SPECS §3.4):
the ``P`` networks of a GA generation are stacked into one block-diagonal "super-RNN" of
``P·N`` units — a dense ``J_rec[P·N, P·N]`` with the members' ``N × N`` matrices on its
diagonal and zeros elsewhere, ``J_in[P·N, M]`` (the input is shared), ``J_out[P, P·N]`` — and
simulated over one batch of trials, column convention ``x[P·N, B]``, a Python loop over time:

    x ← (1 − dt) x + dt (J_in u_t + J_rec (1 + tanh x)),     y_t = J_out x     ([P, B]),

from one initial state ``x_0 = 0.3·N(0, 1)`` (``[N]``) shared by every member and trial.
Member ``i``'s fitness is ``(1/B) Σ_b [(y_{T−1} − s)² + y_0²]``; the members are sorted by it,
the best ``num_parents`` (5) are the parents, and the next generation's super-RNN is built
member by member (``CreateDescendants``): child 0 is the best parent unchanged, child
``c > 0`` copies a parent drawn uniformly from the parents and adds ``mutation·N(0, 1)``
(0.005) to its ``J_in``, ``J_rec`` block and ``J_out`` row; new dense zero matrices are
filled each generation, as in the study.

:func:`block_diagonal_generation` is that algorithm; :func:`batched_generation` computes the
same fitnesses with the block diagonal as a batched matmul (``[P, N, N] @ [P, N, B]``), which
the study did not do — a stronger PyTorch baseline reported beside it.

Departures, in PyTorch's favour: the batch of trials is drawn with vectorised tensor ops
(the study loops over the 500 trials in Python, one ``task.GetInput()`` each), the outputs
stay on the CPU (the study moved each step's output off the GPU), the per-step activity
logging and the per-generation validation (2,000 trials of the best member) are left out, and
``torch.no_grad()`` is on (the study's super-RNN tensors carried no gradient either).

torch is imported inside the functions: it is only the ``bench`` extra of jaxrnn.
"""

from __future__ import annotations

import time

COHERENCE_MAX = 0.1857
HIDDEN, DT, INIT_STATE_SCALE, NUM_PARENTS, MUTATION = 50, 0.1, 0.3, 5, 0.005


def decision_batch(torch, generator, batch: int, num_steps: int, num_contexts: int, noise_std: float = 0.1):
    """RDM (``num_contexts = 0``) or N-CDI inputs ``[T, M, B]`` and targets ``[B]``, vectorised.

    As ``jaxrnn.tasks.decision``: ``μ ~ U(0, 0.1857)`` shared by the sensory channels, an
    independent sign per channel, white noise of std ``noise_std``; N-CDI adds a one-hot
    context cue and the target is the cued channel's sign.
    """
    channels = max(num_contexts, 1)
    coherence = COHERENCE_MAX * torch.rand(batch, generator=generator)
    signs = torch.randint(0, 2, (channels, batch), generator=generator).float() * 2 - 1
    sensory = signs * coherence + noise_std * torch.randn(num_steps, channels, batch, generator=generator)
    if num_contexts == 0:
        return sensory, signs[0]
    context = torch.randint(0, num_contexts, (batch,), generator=generator)
    cue = torch.nn.functional.one_hot(context, num_contexts).float().T.expand(num_steps, num_contexts, batch)
    return torch.cat([sensory, cue], dim=1), signs.gather(0, context[None])[0]


def init_members(torch, generator, population: int, input_size: int, hidden: int = HIDDEN, gain: float = 1.0):
    """Per-member weights as the study's ``initializeSuperModel``: ``J_in ~ 0.5·N(0, 1)``,
    ``J_rec ~ (g²/N)·N(0, 1)``, ``J_out ~ 0.1·N(0, 1)``; returned stacked,
    ``([P, N, M], [P, N, N], [P, 1, N])``."""
    w_in = 0.5 * torch.randn(population, hidden, input_size, generator=generator)
    w_rec = (gain**2 / hidden) * torch.randn(population, hidden, hidden, generator=generator)
    w_out = 0.1 * torch.randn(population, 1, hidden, generator=generator)
    return w_in, w_rec, w_out


def super_rnn(torch, w_in, w_rec, w_out):
    """The dense block-diagonal super-RNN ``(J_in[P·N, M], J_rec[P·N, P·N], J_out[P, P·N])``."""
    population, hidden, input_size = w_in.shape
    size = population * hidden
    j_in = w_in.reshape(size, input_size).clone()
    j_rec = torch.zeros(size, size)
    j_out = torch.zeros(population, size)
    for i in range(population):  # the study fills the blocks member by member
        block = slice(i * hidden, (i + 1) * hidden)
        j_rec[block, block] = w_rec[i]
        j_out[i, block] = w_out[i, 0]
    return j_in, j_rec, j_out


def super_rnn_losses(torch, j_in, j_rec, j_out, x0, inputs, targets, dt: float = DT):
    """Fitness ``[P]`` of every member: the super-RNN run over ``inputs[T, M, B]`` from ``x0[N]``."""
    population = j_out.shape[0]
    batch = inputs.shape[-1]
    x = x0.repeat(population)[:, None].expand(-1, batch)  # every member starts from the same x_0
    outputs = torch.empty(inputs.shape[0], population, batch)
    for t in range(inputs.shape[0]):
        x = dt * (j_in @ inputs[t]) + dt * (j_rec @ (1 + torch.tanh(x))) + (1 - dt) * x
        outputs[t] = j_out @ x
    return torch.mean((outputs[-1] - targets) ** 2 + outputs[0] ** 2, dim=1)


def batched_losses(torch, w_in, w_rec, w_out, x0, inputs, targets, dt: float = DT):
    """The fitnesses of :func:`super_rnn_losses` with the blocks as one batched matmul."""
    population = w_rec.shape[0]
    batch = inputs.shape[-1]
    x = x0[None, :, None].expand(population, -1, batch)
    outputs = torch.empty(inputs.shape[0], population, batch)
    for t in range(inputs.shape[0]):
        x = dt * (w_in @ inputs[t]) + dt * torch.bmm(w_rec, 1 + torch.tanh(x)) + (1 - dt) * x
        outputs[t] = torch.bmm(w_out, x)[:, 0]
    return torch.mean((outputs[-1] - targets) ** 2 + outputs[0] ** 2, dim=1)


def create_descendants(torch, generator, w_in, w_rec, w_out, parents, mutation: float = MUTATION):
    """The next generation from ``parents`` (indices, best first): child 0 = best parent,
    every other child a uniformly drawn parent plus ``mutation·N(0, 1)`` on all three matrices."""
    children = [], [], []
    for child in range(w_rec.shape[0]):
        if child == 0:
            source = int(parents[0])
            noise = 0.0
        else:
            source = int(parents[int(torch.randint(0, len(parents), (), generator=generator))])
            noise = mutation
        for out, weights in zip(children, (w_in, w_rec, w_out)):
            step = noise * torch.randn(weights.shape[1:], generator=generator) if noise else 0.0
            out.append(weights[source] + step)
    return tuple(torch.stack(c) for c in children)


def block_diagonal_generation(torch, generator, members, num_contexts: int, *, batch: int = 500,
                              num_steps: int = 750, noise_std: float = 0.1, num_parents: int = NUM_PARENTS):
    """One generation the study's way; returns ``(next members, fitnesses [P])``.

    ``members = (w_in, w_rec, w_out)`` stacked per member; the super-RNN's dense matrices are
    assembled from them (as ``CreateDescendants`` did with ``AssignWeights``) and the next
    generation is written back as per-member blocks.
    """
    inputs, targets = decision_batch(torch, generator, batch, num_steps, num_contexts, noise_std)
    x0 = INIT_STATE_SCALE * torch.randn(members[1].shape[1], generator=generator)
    j_in, j_rec, j_out = super_rnn(torch, *members)
    losses = super_rnn_losses(torch, j_in, j_rec, j_out, x0, inputs, targets)
    parents = torch.argsort(losses)[:num_parents]
    return create_descendants(torch, generator, *members, parents), losses


def batched_generation(torch, generator, members, num_contexts: int, *, batch: int = 500,
                       num_steps: int = 750, noise_std: float = 0.1, num_parents: int = NUM_PARENTS):
    """One generation with :func:`batched_losses` (not the study's way); as
    :func:`block_diagonal_generation` otherwise."""
    inputs, targets = decision_batch(torch, generator, batch, num_steps, num_contexts, noise_std)
    x0 = INIT_STATE_SCALE * torch.randn(members[1].shape[1], generator=generator)
    losses = batched_losses(torch, *members, x0, inputs, targets)
    parents = torch.argsort(losses)[:num_parents]
    return create_descendants(torch, generator, *members, parents), losses


def time_generations(num_generations: int, *, population: int = 50, num_contexts: int = 0, batch: int = 500,
                     num_steps: int = 750, variant: str = "block_diagonal", seed: int = 0,
                     num_threads: int | None = None) -> float:
    """Wall seconds of ``num_generations`` GA generations (after member initialisation)."""
    import torch

    if num_threads is not None:
        torch.set_num_threads(num_threads)
    generator = torch.Generator().manual_seed(seed)
    input_size = 1 if num_contexts == 0 else 2 * num_contexts
    members = init_members(torch, generator, population, input_size)
    step = {"block_diagonal": block_diagonal_generation, "batched": batched_generation}[variant]
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(num_generations):
            members, losses = step(torch, generator, members, num_contexts, batch=batch, num_steps=num_steps)
        elapsed = time.perf_counter() - start
    if not bool(torch.isfinite(losses).all()):
        raise RuntimeError(f"torch GA reference produced non-finite fitness: {losses}")
    return elapsed


if __name__ == "__main__":
    import sys

    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 75
    for contexts, size in ((0, 50), (2, 20)):
        for variant in ("block_diagonal", "batched"):
            seconds = time_generations(1, population=size, num_contexts=contexts, num_steps=steps, variant=variant)
            task = "RDM" if contexts == 0 else "CDI"
            print(f"{task} P={size} {variant}: {seconds:.2f} s for one {steps}-step generation")
