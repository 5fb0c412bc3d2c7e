"""PyTorch reference for ``ppo_population.py``: recurrent PPO on Pendulum, one agent at a time.

The same training as :mod:`jaxrnn.rules.ppo` with the packaged ``huang-pendulum`` settings, written
the way the template it follows does it (Singh's plumetracknets fork of ikostrikov's
``pytorch-a2c-ppo-acktr``), without gymnasium:

- **Environments**: ``num_envs`` (8) Pendulum-v1 copies as one batch of tensors (Gymnasium's
  physics, the FO observation ``(cos θ, sin θ, θ̇)``, truncation after 200 steps, auto-reset).
- **Network**: ``nn.RNN(M, 64)`` (tanh) → actor ``Linear(64, 64)–Tanh–Linear(64, 1)`` and critic
  ``Linear(64, 64)–Tanh–Linear(64, 1)``, a state-independent ``log_std`` (orthogonal init as the
  template).
- **Rollout**: a Python loop over ``num_steps`` (128) steps, one ``nn.RNN`` step of the 8
  environments each, sampled actions, the hidden state zeroed at episode starts; the value of
  the final observation of a truncated episode is bootstrapped (one extra critic call then).
- **GAE** (γ 0.99, λ 0.95) on rewards × 0.01, advantages normalised.
- **Epochs**: 10 × 4 minibatches of 2 whole environment sequences; each sequence is re-run from
  its stored initial hidden state, split where any environment's episode restarts (ikostrikov's
  ``_forward_gru``) so that ``nn.RNN`` runs over each piece; clipped PPO loss with clipped value
  loss, entropy 0.005, value 0.5; ``clip_grad_norm_(0.5)``; ``Adam(lr 1e-3, eps 1e-5)``.

torch is imported inside the functions: it is only needed for the benchmark.

    python benchmarks/torch_ppo_reference.py --updates 3     # prints env steps/s
"""

from __future__ import annotations

import argparse
import json
import math
import time


def make_agent(torch, obs_size: int = 3, hidden: int = 64):
    nn = torch.nn

    class Agent(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(obs_size, hidden)
            for name, p in self.rnn.named_parameters():  # template: N(0, 1/√H) weights, zero biases
                nn.init.normal_(p, 0.0, 1.0 / math.sqrt(hidden)) if "weight" in name else nn.init.zeros_(p)

            def head():
                layers = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
                nn.init.orthogonal_(layers[0].weight, math.sqrt(2))
                nn.init.orthogonal_(layers[2].weight, 1.0)
                for b in (layers[0].bias, layers[2].bias):
                    nn.init.zeros_(b)
                return layers

            self.actor, self.critic = head(), head()
            self.log_std = nn.Parameter(torch.zeros(1))

        def forward(self, obs, h):
            """``obs[T, B, M]``, ``h[1, B, H]`` -> ``(mean[T, B, 1], value[T, B], h)``."""
            y, h = self.rnn(obs, h)
            return self.actor(y), self.critic(y)[..., 0], h

    return Agent()


class Pendulum:
    """Gymnasium Pendulum-v1 batched over ``n`` environments (FO observations)."""

    def __init__(self, torch, n: int, generator):
        self.torch, self.n, self.gen = torch, n, generator
        self.theta = torch.zeros(n)
        self.theta_dot = torch.zeros(n)
        self.time = torch.zeros(n, dtype=torch.long)
        self.reset(torch.ones(n, dtype=torch.bool))

    def reset(self, mask):
        k = int(mask.sum())
        if k:
            self.theta[mask] = (self.torch.rand(k, generator=self.gen) * 2 - 1) * math.pi
            self.theta_dot[mask] = self.torch.rand(k, generator=self.gen) * 2 - 1
            self.time[mask] = 0

    def obs(self):
        return self.torch.stack([self.theta.cos(), self.theta.sin(), self.theta_dot], -1)

    def step(self, action):
        """``(next obs, reward, done, final obs before any reset)``."""
        u = action.clamp(-2.0, 2.0)
        normalized = (self.theta + math.pi) % (2 * math.pi) - math.pi
        reward = -(normalized**2 + 0.1 * self.theta_dot**2 + 0.001 * u**2)
        self.theta_dot = (self.theta_dot + (15.0 * self.theta.sin() + 3.0 * u) * 0.05).clamp(-8.0, 8.0)
        self.theta = self.theta + self.theta_dot * 0.05
        self.time += 1
        done = self.time >= 200
        final_obs = self.obs()
        self.reset(done)
        return self.obs(), reward, done, final_obs


def train(num_updates: int, seed: int = 0, num_envs: int = 8, num_steps: int = 128, num_epochs: int = 10,
          num_minibatches: int = 4, learning_rate: float = 1e-3, warmup: int = 1):
    """Train one agent; returns ``(env_steps_per_s over the timed updates, mean episode returns)``."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    agent = make_agent(torch)
    optimizer = torch.optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)
    envs = Pendulum(torch, num_envs, gen)
    obs = envs.obs()
    h = torch.zeros(1, num_envs, 64)
    reset = torch.ones(num_envs, dtype=torch.bool)
    episode_return, returns_log = torch.zeros(num_envs), []
    gamma, lam, clip, per_mb = 0.99, 0.95, 0.2, num_envs // num_minibatches
    start = None
    for update in range(num_updates + warmup):
        if update == warmup:
            start = time.perf_counter()
        h0, store = h.clone(), {k: [] for k in ("obs", "resets", "actions", "logp", "values", "rewards",
                                                 "next_values", "dones")}
        with torch.no_grad():
            for _ in range(num_steps):
                h = h * (~reset).float()[None, :, None]
                mean, value, h = agent(obs[None], h)
                mean, value = mean[0, :, 0], value[0]
                std = agent.log_std.exp()
                action = mean + std * torch.randn(num_envs, generator=gen)
                logp = -0.5 * ((action - mean) / std) ** 2 - agent.log_std - 0.5 * math.log(2 * math.pi)
                next_obs, reward, done, final_obs = envs.step(action)
                next_value = torch.zeros(num_envs)
                if bool(done.any()):  # bootstrap truncated episodes from their final observation
                    _, v_final, _ = agent(final_obs[None], h)
                    next_value = torch.where(done, v_final[0], next_value)
                for k, v in (("obs", obs), ("resets", reset), ("actions", action), ("logp", logp),
                             ("values", value), ("rewards", reward), ("dones", done), ("next_values", next_value)):
                    store[k].append(v)
                episode_return += reward
                if bool(done.any()):
                    returns_log.append(float(episode_return[done].mean()))
                    episode_return[done] = 0.0
                obs, reset = next_obs, done
            _, v_last, _ = agent(obs[None], h * (~reset).float()[None, :, None])
        batch = {k: torch.stack(v) for k, v in store.items()}  # [T, E]
        # the value after step t: V(s_{t+1}) inside an episode, V(final obs) at a truncation
        nv = torch.cat([batch["values"][1:], v_last[0][None]])
        nv = torch.where(batch["dones"], batch["next_values"], nv)
        adv = torch.zeros(num_steps, num_envs)
        gae = torch.zeros(num_envs)
        r = 0.01 * batch["rewards"]
        for t in reversed(range(num_steps)):
            delta = r[t] + gamma * nv[t] - batch["values"][t]
            gae = delta + gamma * lam * (~batch["dones"][t]).float() * gae
            adv[t] = gae
        ret = adv + batch["values"]
        adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-5)
        for _ in range(num_epochs):
            perm = torch.randperm(num_envs, generator=gen)
            for mb in range(num_minibatches):
                idx = perm[mb * per_mb:(mb + 1) * per_mb]
                o, rs = batch["obs"][:, idx], batch["resets"][:, idx]
                hm = h0[:, idx]
                starts = [0] + [t for t in range(1, num_steps) if bool(rs[t].any())] + [num_steps]
                means, values = [], []
                for a, b in zip(starts[:-1], starts[1:]):
                    hm = hm * (~rs[a]).float()[None, :, None]
                    m_, v_, hm = agent(o[a:b], hm)
                    means.append(m_[..., 0])
                    values.append(v_)
                mean, value = torch.cat(means), torch.cat(values)
                logp = -0.5 * ((batch["actions"][:, idx] - mean) / agent.log_std.exp()) ** 2 - agent.log_std \
                    - 0.5 * math.log(2 * math.pi)
                ratio = (logp - batch["logp"][:, idx]).exp()
                a_mb = adv[:, idx]
                policy_loss = -torch.min(ratio * a_mb, ratio.clamp(1 - clip, 1 + clip) * a_mb).mean()
                old_v, ret_mb = batch["values"][:, idx], ret[:, idx]
                v_clip = old_v + (value - old_v).clamp(-clip, clip)
                value_loss = 0.5 * torch.max((value - ret_mb) ** 2, (v_clip - ret_mb) ** 2).mean()
                entropy = (0.5 + 0.5 * math.log(2 * math.pi) + agent.log_std).sum()
                loss = policy_loss + 0.5 * value_loss - 0.005 * entropy
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
    seconds = time.perf_counter() - start
    return num_updates * num_envs * num_steps / seconds, returns_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    steps_per_s, returns = train(args.updates)
    print(json.dumps({"env_steps_per_s": steps_per_s, "threads": torch.get_num_threads(),
                      "returns": returns[-3:]}))


if __name__ == "__main__":
    main()
