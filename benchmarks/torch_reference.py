"""PyTorch reference for ``bptt_population.py``: BPTT on CDI, one network at a time.

Written the way McMahan et al.'s own trainer (``bptt.py`` / ``rnn.py`` of
bmcmahan2016/RNN_Learning_Rules) does it: column-convention state ``x[N, B]``, a Python loop
over the ``T`` time steps,

    x ← (1 − dt) x + dt (J_in u_t + J_rec (1 + tanh x)),     y_t = J_out x,

loss ``Σ_batch [(y_{T−1} − s)² + (y_0 − 0)²]`` on the last and first outputs only, autograd
through the whole loop and one ``torch.optim.Adam(lr=5e-4)`` step on ``J_rec`` alone.

Two deliberate departures, both in PyTorch's favour: the batch of CDI trials is drawn with
vectorised tensor ops (the authors build it with a Python loop over the 500 trials), and the
per-step activity logging to NumPy is left out. Outputs are collected in a list and stacked.

torch is imported inside the functions: it is only the ``bench`` extra of jaxrnn.
"""

from __future__ import annotations

import time

COHERENCE_MAX = 0.1857


def cdi_batch(torch, generator, batch: int, num_steps: int, noise_std: float = 0.5, num_contexts: int = 2):
    """CDI inputs ``[T, 2n, B]`` and targets ``[B]`` (as ``jaxrnn.tasks.decision``), vectorised."""
    n = num_contexts
    coherence = COHERENCE_MAX * torch.rand(batch, generator=generator)
    signs = torch.randint(0, 2, (n, batch), generator=generator).float() * 2 - 1
    context = torch.randint(0, n, (batch,), generator=generator)
    noise = noise_std * torch.randn(num_steps, n, batch, generator=generator)
    sensory = signs * coherence + noise
    cue = torch.nn.functional.one_hot(context, n).float().T.expand(num_steps, n, batch)
    inputs = torch.cat([sensory, cue], dim=1)
    targets = signs.gather(0, context[None])[0]
    return inputs, targets


def make_network(torch, generator, hidden: int = 50, input_size: int = 4, gain: float = 1.0):
    """``J_in ~ 0.5·N(0,1)``, ``J_rec ~ (g²/N)·N(0,1)``, ``J_out ~ 0.1·N(0,1)`` (SPECS §3.1)."""
    j_in = 0.5 * torch.randn(hidden, input_size, generator=generator)
    j_rec = (gain**2 / hidden) * torch.randn(hidden, hidden, generator=generator)
    j_out = 0.1 * torch.randn(1, hidden, generator=generator)
    return j_in, j_rec.requires_grad_(True), j_out


def forward_loss(torch, j_in, j_rec, j_out, x0, inputs, targets, dt: float = 0.1):
    """Loop over time; loss on the first and last outputs, summed over the batch."""
    x = x0
    outputs = []
    for t in range(inputs.shape[0]):
        x = (1 - dt) * x + dt * (j_in @ inputs[t] + j_rec @ (1 + torch.tanh(x)))
        outputs.append(j_out @ x)
    output = torch.stack(outputs)[:, 0, :]  # [T, B]
    return torch.sum((output[-1] - targets) ** 2 + output[0] ** 2)


def train(
    num_updates: int,
    *,
    hidden: int = 50,
    batch: int = 500,
    num_steps: int = 750,
    learning_rate: float = 5e-4,
    init_state_scale: float = 0.3,
    seed: int = 0,
    num_threads: int | None = None,
) -> float:
    """Train one network for ``num_updates`` BPTT updates; return the wall time in seconds.

    The timer covers only the updates (batch sampling, forward, backward, Adam step), not the
    network construction.
    """
    import torch

    if num_threads is not None:
        torch.set_num_threads(num_threads)
    generator = torch.Generator().manual_seed(seed)
    j_in, j_rec, j_out = make_network(torch, generator, hidden)
    optimizer = torch.optim.Adam([j_rec], lr=learning_rate)
    start = time.perf_counter()
    for _ in range(num_updates):
        inputs, targets = cdi_batch(torch, generator, batch, num_steps)
        x0 = init_state_scale * torch.randn(hidden, 1, generator=generator)  # shared by the batch
        optimizer.zero_grad()
        loss = forward_loss(torch, j_in, j_rec, j_out, x0, inputs, targets)
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss):
        raise RuntimeError(f"torch reference diverged: loss = {loss.item()}")
    return elapsed


if __name__ == "__main__":
    import sys

    k = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    train(1)
    seconds = train(k)
    print(f"{k} updates in {seconds:.3f} s: {k / seconds:.2f} updates/s")
