"""Huang, Singh & Rajan (2024), "Learning dynamics and geometry in recurrent neural controllers".

The reproduction of Fig. 1 b–e on agents that learn: vanilla tanh RNN agents (64 units, one
64-unit tanh layer for policy and value) trained on Pendulum-v1, partially observed (PO:
cos θ, sin θ) and fully observed (FO: + θ̇), for 100 iterations of 1,024 environment steps, with
a params snapshot along training; then, per algorithm, the analyses of
:mod:`jaxrnn.analysis.policy` on every member × snapshot, the figures
(:mod:`jaxrnn.studies.huang_figures`) and the claims table (:mod:`jaxrnn.studies.huang_claims`).

**Algorithms.** The paper trains with "policy gradients (Ni, Eysenbach & Salakhutdinov 2021)",
i.e. recurrent off-policy actor-critic (``jaxrnn.rules.recurrent_sac``); it is included when
that rule is registered and its packaged config ``huang-pendulum-sac`` exists. Recurrent PPO
(``jaxrnn.rules.ppo``) with the recipe chosen by the population sweep
``benchmarks/ppo_recipe_sweep.py`` is always included. Every figure and claim names its
algorithm.

**Scales.** ``"full"``: the packaged configs (``configs/huang-pendulum.toml``,
``configs/huang-pendulum-sac.toml``: 16 seeds, 100 iterations, a snapshot after every one), 5
episodes × 200 steps linearised at every step. ``"cpu"`` (default): the same agents and recipe
with 5 seeds and a snapshot every 2nd iteration, of which every 2nd is analysed (iterations 0, 4,
…), with 8 fixed-point starts per observation and every 10th step linearised; PPO trains the full
100 iterations, SAC 60 (its 10 agents × 100 iterations did not fit the 2-core machine on the day:
≈ 5 s per agent-iteration at load 8; set before the run). ``"test"``: 2 seeds, 16 hidden units, 3
updates of 2 × 32 steps (SAC: 2 rounds of 16 steps and 2 gradient steps of 4 windows × 8 steps) —
it only exercises the pipeline; its claims mean nothing.

Measured wall time of ``scale="cpu"`` (``python -c "from jaxrnn.studies import huang;
huang.reproduce('runs/huang', scale='cpu')"``, 2-core CPU shared with other jobs, in parts that
resumed the stored populations and analyses): PPO ≈ 13 min training (both compiles included) +
30.5 min analyses, figures and claims at load average 17–22; SAC (10 agents × 60 iterations) ≈ 58
min training (both compiles) at load 6.5–11 (median 9.7), then 9.5 min to reload both stores
and the PPO analyses, analyse SAC and draw every figure and claim (load 8–11). Not yet measured on
an idle machine.

Outputs in ``out``: one population run per algorithm (``out/<algorithm>/run``, resumable),
the analyses (``out/<algorithm>/analysis_<task>.npz``, reloaded when present), the figures
(:data:`FIGURES`), ``claims.json`` and ``claims.md``.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import population
from jaxrnn.analysis import policy, ring
from jaxrnn.models.actor_critic import ActorCritic
from jaxrnn.population.builders import build_cell, rule_values
from jaxrnn.rules.registry import registered_rules
from jaxrnn.studies.claims import summary_lines, write_claims

STUDY = "huang-2024"
TASKS = ("pendulum-po", "pendulum-fo")
CONFIGS = {"ppo": "huang-pendulum", "sac": "huang-pendulum-sac"}
ALGORITHM_NAMES = {"ppo": "recurrent PPO", "sac": "recurrent SAC"}
THETAS = np.linspace(-np.pi, np.pi, 61)
THETA_DOTS = np.linspace(-8.0, 8.0, 41)

# scale -> what changes from the packaged config, and the analysis settings
SCALES = {
    "test": {"seeds": 2, "num_updates": 3, "snapshots": 3, "hidden": 16,
             "rule": {"ppo": {"num_envs": 2, "num_steps": 32, "num_minibatches": 1, "num_epochs": 2, "hidden_head": 16,
                              "num_eval_episodes": 2},
                      "sac": {"num_envs": 2, "num_steps": 32, "num_rounds": 2, "gradient_steps": 4, "batch_size": 4,
                              "sequence_length": 8, "buffer_size": 192, "hidden_head": 16, "random_steps": 32,
                              "learning_starts": 32, "num_eval_episodes": 2}},
             "episodes": 2, "tau_stride": 20, "num_starts": 4, "num_resamples": 200, "history": 10,
             "grid": (13, 9)},
    # SAC at cpu scale: 60 iterations, not 100 — 10 agents × 100 SAC iterations did not fit the 2-core machine
    # (≈ 5 s per agent-iteration at load 8, measured 2026-12-03); fixed before the run, not after seeing data
    "cpu": {"seeds": 5, "snapshots": 51, "analysis_every": 2, "episodes": 5, "tau_stride": 10, "num_starts": 8,
            "num_resamples": 500, "history": 50, "grid": (61, 41),
            "run": {"sac": {"num_updates": 60, "snapshots": 31}}},
    "full": {"episodes": 5, "tau_stride": 1, "num_starts": 16, "num_resamples": 2000, "history": 50,
             "grid": (61, 41)},
}
FIG_ALGOS = ("ppo", "sac")
FIGURES: dict[str, str] = {}


def _caption_table() -> None:
    for algo in FIG_ALGOS:
        name = ALGORITHM_NAMES[algo]
        FIGURES.update({
            f"fig1a_learning_{algo}.png": f"Learning curves ({name}): mean return of 20 deterministic Pendulum-v1 "
            "episodes after every iteration of 1,024 steps, every seed, PO and FO, with the study's target (−250).",
            f"fig1b_policy_{algo}.png": f"Fig. 1b ({name}): policy landscape μ(θ, θ̇) of one PO and one FO agent "
            "early, mid and late in training, and the decisiveness of the policy over training for every seed.",
            f"fig1c_ring_{algo}.png": f"Fig. 1c ({name}): PO hidden states in their top-2 PCs with the fixed points "
            "under the goal and hanging observations; ring score over training against untrained networks fed the "
            "same inputs.",
            f"fig1d_fp_{algo}.png": f"Fig. 1d ({name}): path of the stable goal fixed point of one PO agent, and "
            "reward-to-go against the FP's distance to its final position over all PO seeds (the paper's metric).",
            f"fig1e_timescales_{algo}.png": f"Fig. 1e ({name}): top-5 integration timescales τ over training (PO "
            "and FO) with 99 % block-bootstrap intervals that respect the autocorrelation of consecutive steps.",
        })


_caption_table()


def algorithms() -> list[str]:
    """The algorithms this installation can run: PPO, and SAC once ``recurrent_sac`` and its config exist."""
    out = ["ppo"]
    if "recurrent_sac" in registered_rules() and resources.files("jaxrnn.configs").joinpath(
            CONFIGS["sac"] + ".toml").is_file():
        out.append("sac")
    return out


def study_config(algorithm: str, scale: str):
    """The population config of ``algorithm`` at ``scale`` (the packaged config, shrunk below ``full``)."""
    text = resources.files("jaxrnn.configs").joinpath(CONFIGS[algorithm] + ".toml").read_text()
    raw = tomllib.loads(text)
    settings = SCALES[scale]
    if scale != "full":
        raw["grid"]["seeds"] = settings["seeds"]
        raw["run"]["snapshots"] = settings["snapshots"]
        raw["run"]["name"] = f"{raw['run']['name']}-{scale}"
        if "num_updates" in settings:
            raw["run"]["num_updates"] = settings["num_updates"]
            raw["run"]["chunk_updates"] = settings["num_updates"]
        raw["run"].update(settings.get("run", {}).get(algorithm, {}))
        if "hidden" in settings:
            raw["model"]["hidden"] = settings["hidden"]
            raw["rule"].update(settings["rule"][algorithm])
    return population.from_dict(raw, source=text, name=raw["run"]["name"])


def agent_network(config, task_name: str):
    """``(net, env, env_params)`` of the agents of ``config`` on ``task_name``."""
    import jaxrnn

    env, env_params = jaxrnn.make(task_name)
    member = config.members()[0]
    rule = rule_values(member.rule)
    cell = build_cell(member.model)
    if rule["name"] == "recurrent_sac":
        from jaxrnn.models.sac_agent import SACAgent

        space = env.action_space(env.default_params)
        net = SACAgent(cell, env.observation_size, 1, rule["hidden_head"], (float(space.low),), (float(space.high),))
    else:
        net = ActorCritic(cell, env.observation_size, 1, rule["hidden_head"], rule["head_layers"])
    return net, env, env_params


def load_agents(dataset, config, task_name: str, every: int = 1):
    """``(net, env, env_params, params[P, S, ...], seeds[P], members[P])`` of the members on ``task_name``,
    every ``every``-th snapshot (the last one always included).

    Stored params are NaN-padded to the largest shape over groups (PO's ``W_in`` is ``[N, 2]`` in a
    store whose FO members have ``[N, 3]``): each leaf is cut to its own shape.
    """
    net, env, env_params = agent_network(config, task_name)
    like = net.init(jax.random.PRNGKey(0))
    members = np.flatnonzero(dataset["task.name"].values == task_name)
    snaps = snapshot_subset(dataset.sizes["snapshot"], every)
    leaves = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(like)[0]:
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        values = dataset["params." + ".".join(n for n in names if n != "params")].values[members]
        leaves.append(jnp.asarray(values[(slice(None), snaps) + tuple(slice(0, n) for n in leaf.shape)]))
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)
    return net, env, env_params, params, dataset["seed"].values[members], members


def snapshot_subset(num_snapshots: int, every: int) -> np.ndarray:
    """Indices ``0, every, 2·every, …`` of the stored snapshots, with the last one."""
    return np.unique(np.append(np.arange(0, num_snapshots, every), num_snapshots - 1))


def landscape_snapshots(num_snapshots: int) -> np.ndarray:
    """Snapshot indices whose policy landscape is computed: 6 evenly spaced, plus the quarter mark
    (the figure shows first, quarter, last); a landscape is 2,501 grid points × 50 history steps."""
    return np.unique(np.concatenate([np.round(np.linspace(0, num_snapshots - 1, 6)), [num_snapshots // 4]]).astype(int))


def analysis_keys(seeds) -> jax.Array:
    """One analysis key per member (its seed + 1000): the same rollout starts at every snapshot."""
    return jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32) + 1000)


def analyze_task(agents, settings: dict, cache: Path, quiet: bool) -> dict[str, np.ndarray]:
    """Everything the figures and claims need about one task's members, as NumPy arrays (cached)."""
    if cache.exists():
        with np.load(cache) as data:
            return dict(data)
    net, env, env_params, params, seeds, _ = agents
    keys = analysis_keys(seeds)
    geometry = policy.analyze_population(
        net, env, params, keys, env_params, snapshot_batch=8, num_episodes=settings["episodes"],
        tau_stride=settings["tau_stride"], num_starts=settings["num_starts"],
        num_resamples=settings["num_resamples"])
    num_snapshots = jax.tree.leaves(params)[0].shape[1]
    snaps = landscape_snapshots(num_snapshots)
    thetas = np.linspace(-np.pi, np.pi, settings["grid"][0])
    theta_dots = np.linspace(-8.0, 8.0, settings["grid"][1])
    landscapes = policy.landscape_population(net, env, jax.tree.map(lambda x: x[:, snaps], params), thetas,
                                             theta_dots, env_params, settings["history"])
    # untrained baseline of the ring: each seed's initial network driven by its final agent's observations
    final = jax.tree.map(lambda x: x[:, -1], params)
    initial = jax.tree.map(lambda x: x[:, 0], params)

    def baseline(p_final, p_init, key):
        ro = policy.closed_loop_rollout(net, env, p_final, jax.random.split(key)[0], env_params,
                                        settings["episodes"])
        hidden = policy.driven_states(net, p_init, ro.obs)
        return ring.ring_score(hidden.reshape(-1, hidden.shape[-1]), ro.theta.reshape(-1)).score

    # members one after another: a vmapped batch of SVDs can deadlock XLA:CPU's pool (jaxrnn.lapack_guard)
    untrained_ring = jax.jit(lambda f, i, k: jax.lax.map(lambda x: baseline(*x), (f, i, k)))(final, initial, keys)
    g = geometry
    out = {
        "seeds": np.asarray(seeds), "episode_return": g.episode_return, "ring_score": g.ring.score,
        "ring_untrained_same_inputs": untrained_ring, "goal_fp_x": g.goal_fp.x, "goal_fp_found": g.goal_fp.found,
        "goal_location": g.goal_location, "fp_goal_distance": g.fp_goal_distance,
        "hanging_fp_x": g.hanging_fp.x, "hanging_fp_found": g.hanging_fp.found,
        "hanging_fp_stable": g.hanging_fp.stable, "hanging_fp_unstable_dims": g.hanging_fp.num_unstable,
        "tau_mean": g.tau.mean, "tau_low": g.tau.low, "tau_high": g.tau.high, "pc_mean": g.pc_mean, "pcs": g.pcs,
        "landscape_thetas": thetas, "landscape_theta_dots": theta_dots, "landscape_snapshots": snaps,
        "landscape": landscapes,
    }
    out = {k: np.asarray(v) for k, v in out.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def run_algorithm(algorithm: str, out: Path, scale: str, quiet: bool) -> dict[str, Any]:
    """Train (or reload) the population of ``algorithm`` and analyse it; returns what figures and claims use."""
    config = study_config(algorithm, scale)
    dataset = population.run(config, out=out / algorithm / "run", quiet=quiet)
    settings = SCALES[scale]
    snaps = snapshot_subset(dataset.sizes["snapshot"], settings.get("analysis_every", 1))
    result = {"algorithm": algorithm, "name": ALGORITHM_NAMES[algorithm], "config": config, "scale": scale,
              "snapshot_updates": dataset["snapshot_update"].values[snaps], "settings": settings, "tasks": {}}
    for task in TASKS:
        agents = load_agents(dataset, config, task, settings.get("analysis_every", 1))
        if not quiet:
            print(f"analysing {algorithm} {task}: {len(agents[4])} members × {len(result['snapshot_updates'])} "
                  "snapshots", flush=True)
        analysis = analyze_task(agents, settings, out / algorithm / f"analysis_{task}.npz", quiet)
        members = agents[5]
        analysis["val_return"] = dataset["val_return"].values[members]
        analysis["eval_update"] = (np.arange(dataset["val_return"].shape[1]) + 1) * config.run.eval_every
        result["tasks"][task] = {"agents": agents, "analysis": analysis}
    return result


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale = {scale!r} is not allowed: must be one of {list(SCALES)}")


def reproduce(out, *, scale: str = "cpu", quiet: bool = False) -> dict:
    """Train, analyse, draw and judge (module docstring); returns the claims document."""
    _check_scale(scale)
    from jaxrnn.studies import huang_claims, huang_figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    claims = []
    for algorithm in algorithms():
        result = run_algorithm(algorithm, out, scale, quiet)
        notes = huang_figures.draw_all(out, result)
        claims += huang_claims.claims_for(result, notes)
    for algorithm in FIG_ALGOS:
        if algorithm not in algorithms():
            huang_figures.missing_algorithm_figures(out, algorithm, ALGORITHM_NAMES[algorithm])
            claims += huang_claims.missing_algorithm_claims(algorithm, ALGORITHM_NAMES[algorithm])
    command = "jaxrnn reproduce huang" + {"cpu": "", "full": " --full", "test": " (scale=test)"}[scale]
    doc = write_claims(out, STUDY, scale, command, claims)
    if not quiet:
        print("\n".join(summary_lines(doc)))
    return doc
