"""PyTorch reference for ``sac_population.py``: recurrent SAC on Pendulum, one agent at a time.

The same training as :mod:`jaxrnn.rules.recurrent_sac`, written as a PyTorch user would write it
(pomdp-baselines' structure: ``nn.RNN`` encoders, ``nn.Linear`` heads, one Adam per parameter
group), without gymnasium:

- **Environments**: ``num_envs`` Pendulum-v1 copies as one batch of tensors
  (:class:`torch_ppo_reference.Pendulum`: Gymnasium's physics, FO observations, truncation after
  200 steps, auto-reset, the final observation kept).
- **Network**: actor ``nn.RNN(3, 64)`` (tanh) → ``Linear(64, 64)–Tanh`` → mean and log-std
  ``Linear(64, 1)``; critic its own ``nn.RNN(3, 64)`` → two heads ``Linear(65, 64)–Tanh–Linear(64, 1)``
  on ``[g; a]``; a target copy of the critic. Tanh-Gaussian actions, torque ``2a``.
- **Iteration**: ``num_rounds`` × (collect ``num_steps / num_rounds`` steps of every environment
  — a Python loop over steps, one ``nn.RNN`` step of all environments each, uniform random actions
  for the first ``random_steps`` — then ``gradient_steps / num_rounds`` gradient steps).
- **Replay**: a ring of ``buffer_size / num_envs`` steps per environment (tensors); a batch is
  ``batch_size`` windows of ``sequence_length`` consecutive steps of one environment, drawn
  uniformly (as flashbax), first step and episode starts reset. ``nn.RNN`` cannot reset inside a
  sequence, so each batch is cut where any window has an episode start and the pieces run one
  after another with the state zeroed where needed (ikostrikov's ``_forward_gru``).
- **Gradient step**: the SAC losses of :mod:`jaxrnn.rules.sac_objective` (critic target with the
  entropy term from the target critic at the successor state, twin-Q loss, actor loss through
  the reparameterised action with the critic fixed, temperature loss in ``α``) at the
  parameters before the step, one backward pass, three Adam steps (actor, critic, ``log α``),
  Polyak averaging of the target critic (``torch._foreach`` ops).

torch is imported inside the functions: it is only needed for the benchmark.

    python benchmarks/torch_sac_reference.py --updates 2     # prints env steps/s
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from torch_ppo_reference import Pendulum  # noqa: E402

SETTINGS = {"num_envs": 8, "num_steps": 128, "num_rounds": 16, "gradient_steps": 512, "batch_size": 16,
            "sequence_length": 32, "buffer_size": 102_400, "hidden": 64, "actor_lr": 3e-4, "critic_lr": 1e-3, "gamma": 0.99,
            "tau": 0.005, "reward_scale": 0.1, "random_steps": 1024, "learning_starts": 1024}


def make_modules(torch, obs_size: int = 3, hidden: int = 64):
    nn = torch.nn

    class Actor(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(obs_size, hidden)
            self.hidden = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
            self.mean, self.log_std = nn.Linear(hidden, 1), nn.Linear(hidden, 1)

        def gaussian(self, y):
            z = self.hidden(y)
            return self.mean(z), self.log_std(z).clamp(-20.0, 2.0)

    class Critic(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(obs_size, hidden)
            self.q1, self.q2 = (nn.Sequential(nn.Linear(hidden + 1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
                                for _ in range(2))

        def twin(self, g, a):
            x = torch.cat([g, a], -1)
            return self.q1(x)[..., 0], self.q2(x)[..., 0]

    return Actor(), Critic()


def tanh_gaussian(torch, mean, log_std, noise):
    u = mean + log_std.exp() * noise
    log_prob = -0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi) \
        - 2.0 * (math.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))
    return torch.tanh(u), log_prob.sum(-1)


def run_rnn(torch, rnn, obs, resets):
    """``rnn`` over ``obs[L, B, M]`` from zero, zeroed where ``resets[L, B]``: ``(hs[L, B, N], carries)``."""
    cuts = [0] + [t for t in range(1, obs.shape[0]) if bool(resets[t].any())] + [obs.shape[0]]
    h = torch.zeros(1, obs.shape[1], rnn.hidden_size)
    outs = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        h = h * (~resets[a]).float()[None, :, None]
        y, h = rnn(obs[a:b], h)
        outs.append(y)
    return torch.cat(outs)


def successor(torch, rnn, hs, next_obs):
    """One more ``nn.RNN`` step from every state: ``tanh(W_ih o' + b_ih + W_hh h + b_hh)``."""
    return torch.tanh(next_obs @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + hs @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)


def train(num_updates: int, seed: int = 0, warmup: int = 1, **overrides):
    """Train one agent; returns ``(env_steps_per_s over the timed updates, episode returns)``."""
    import torch

    s = {**SETTINGS, **overrides}
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    E, T, R, L, B = s["num_envs"], s["num_steps"], s["num_rounds"], s["sequence_length"], s["batch_size"]
    cap = s["buffer_size"] // E
    actor, critic = make_modules(torch, hidden=s["hidden"])
    target = copy.deepcopy(critic)
    for p in target.parameters():
        p.requires_grad_(False)
    log_alpha = torch.zeros((), requires_grad=True)
    opt_actor = torch.optim.Adam(actor.parameters(), lr=s["actor_lr"])
    opt_critic = torch.optim.Adam(critic.parameters(), lr=s["critic_lr"])
    opt_alpha = torch.optim.Adam([log_alpha], lr=3e-4)
    buf = {"obs": torch.zeros(E, cap, 3), "actions": torch.zeros(E, cap, 1), "rewards": torch.zeros(E, cap),
           "terminals": torch.zeros(E, cap), "next_obs": torch.zeros(E, cap, 3),
           "resets": torch.zeros(E, cap, dtype=torch.bool)}
    top, size, env_steps = 0, 0, 0
    envs = Pendulum(torch, E, gen)
    obs, h = envs.obs(), torch.zeros(1, E, s["hidden"])
    reset = torch.ones(E, dtype=torch.bool)
    episode_return, returns_log = torch.zeros(E), []
    critic_params, target_params = list(critic.parameters()), list(target.parameters())

    def gradient_step():
        rows = torch.randint(0, E, (B,), generator=gen)
        head = top if size == cap else 0
        starts = torch.randint(0, size - L + 1, (B,), generator=gen)
        idx = (head + starts[:, None] + torch.arange(L)[None]) % cap  # [B, L]
        batch = {k: v[rows[:, None], idx].transpose(0, 1) for k, v in buf.items()}  # [L, B, ...]
        batch["resets"][0] = True
        alpha = log_alpha.exp().detach()
        noise = torch.randn(2, L, B, 1, generator=gen)
        hs = run_rnn(torch, actor.rnn, batch["obs"], batch["resets"])
        with torch.no_grad():
            next_a, next_logp = tanh_gaussian(torch, *actor.gaussian(successor(torch, actor.rnn, hs, batch["next_obs"])),
                                              noise[0])
            g_bar = run_rnn(torch, target.rnn, batch["obs"], batch["resets"])
            q1_t, q2_t = target.twin(successor(torch, target.rnn, g_bar, batch["next_obs"]), next_a)
            y = s["reward_scale"] * batch["rewards"] + s["gamma"] * (1 - batch["terminals"]) * (
                torch.minimum(q1_t, q2_t) - alpha * next_logp)
        gs = run_rnn(torch, critic.rnn, batch["obs"], batch["resets"])
        q1, q2 = critic.twin(gs, batch["actions"])
        critic_loss = ((q1 - y) ** 2 + (q2 - y) ** 2).mean()
        new_a, logp = tanh_gaussian(torch, *actor.gaussian(hs), noise[1])
        for p in critic_params:
            p.requires_grad_(False)
        q1_n, q2_n = critic.twin(gs.detach(), new_a)
        for p in critic_params:
            p.requires_grad_(True)
        actor_loss = (alpha * logp - torch.minimum(q1_n, q2_n)).mean()
        alpha_loss = -log_alpha.exp() * (logp.detach().mean() - 1.0)
        for opt in (opt_actor, opt_critic, opt_alpha):
            opt.zero_grad()
        (critic_loss + actor_loss + alpha_loss).backward()
        for opt in (opt_actor, opt_critic, opt_alpha):
            opt.step()
        with torch.no_grad():
            torch._foreach_mul_(target_params, 1.0 - s["tau"])
            torch._foreach_add_(target_params, critic_params, alpha=s["tau"])

    start = None
    for update in range(num_updates + warmup):
        if update == warmup:
            start = time.perf_counter()
        for _ in range(R):
            for _ in range(T // R):
                with torch.no_grad():
                    h = h * (~reset).float()[None, :, None]
                    y, h = actor.rnn(obs[None], h)
                    a, _ = tanh_gaussian(torch, *actor.gaussian(y[0]), torch.randn(E, 1, generator=gen))
                    if env_steps < s["random_steps"]:
                        a = torch.rand(E, 1, generator=gen) * 2 - 1
                    next_obs, reward, done, final_obs = envs.step(2.0 * a[:, 0])
                for k, v in (("obs", obs), ("actions", a), ("rewards", reward), ("terminals", torch.zeros(E)),
                             ("next_obs", final_obs), ("resets", reset)):
                    buf[k][:, top] = v
                top, size, env_steps = (top + 1) % cap, min(size + 1, cap), env_steps + E
                episode_return += reward
                if bool(done.any()):
                    returns_log.append(float(episode_return[done].mean()))
                    episode_return[done] = 0.0
                obs, reset = next_obs, done
            if env_steps >= s["learning_starts"] and size >= L:
                for _ in range(s["gradient_steps"] // R):
                    gradient_step()
    seconds = time.perf_counter() - start
    return num_updates * E * T / seconds, returns_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    steps_per_s, returns = train(args.updates)
    print(json.dumps({"env_steps_per_s": steps_per_s, "threads": torch.get_num_threads(), "returns": returns[-3:]}))


if __name__ == "__main__":
    main()
