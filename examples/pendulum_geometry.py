"""Huang, Singh & Rajan (2024), Fig. 1 b–e: policy, ring geometry, fixed points and timescales.

One population run trains recurrent PPO agents (vanilla tanh RNN, 64 units) on Pendulum-v1,
partially (PO: cos θ, sin θ) and fully (FO: + θ̇) observed, with a params snapshot after every
update; :mod:`jaxrnn.analysis.policy` then dissects every member × snapshot (definitions there).

    python examples/pendulum_geometry.py                 # 3 seeds × {PO, FO} × 100 updates (CPU, minutes)
    python examples/pendulum_geometry.py --full          # the study: packaged config huang-pendulum
    python examples/pendulum_geometry.py --seeds 2 --updates 20 --out /tmp/pg   # a quick look

Writes to ``--out`` (default ``runs/pendulum_example``): the run store (``run/results.zarr``,
resumable), ``fig1b_policy_landscape.png``, ``fig1c_ring.png``, ``fig1d_fp_goal.png``,
``fig1e_timescales.png``, ``captions.md`` and ``summary.json`` (numbers behind the figures).
The small default analyses timescales at every 10th closed-loop step (``--tau-stride``, 1 with
``--full``): the 1,000 eigen-decompositions per agent-snapshot dominate the analysis time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import textwrap
import tomllib
from importlib import resources
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import jaxrnn  # noqa: E402
from jaxrnn import population  # noqa: E402
from jaxrnn.analysis import policy  # noqa: E402
from jaxrnn.analysis.stats import linear_regression  # noqa: E402
from jaxrnn.models.actor_critic import ActorCritic  # noqa: E402
from jaxrnn.population.builders import build_cell, rule_values  # noqa: E402
from jaxrnn.tasks.pendulum import angle_normalize  # noqa: E402

TASKS = ("pendulum-po", "pendulum-fo")
THETAS = np.linspace(-np.pi, np.pi, 61)
THETA_DOTS = np.linspace(-8.0, 8.0, 41)


def make_config(full: bool, seeds: int, updates: int):
    """The packaged huang-pendulum config, shrunk (seeds, updates; a snapshot every update) unless ``full``."""
    text = resources.files("jaxrnn.configs").joinpath("huang-pendulum.toml").read_text()
    if not full:
        for field, value in (("num_updates", updates), ("snapshots", updates + 1), ("seeds", seeds),
                             ("chunk_updates", min(updates, 20))):
            text = re.sub(rf"(?m)^{field} = .*$", f"{field} = {value}", text)
        text = re.sub(r'(?m)^name = "huang-pendulum"$', 'name = "huang-pendulum-small"', text)
    return population.from_dict(tomllib.loads(text), source=text, name="huang-pendulum")


def load_agents(dataset, config, task_name: str):
    """``(net, env, env_params, params[P, S, ...], seeds[P])`` of the members trained on ``task_name``.

    Stored params of a member are NaN-padded to the largest shape over groups (PO's ``W_in`` is
    ``[64, 2]`` in a store whose FO members have ``[64, 3]``): each leaf is cut to its shape.
    """
    env, env_params = jaxrnn.make(task_name)
    rule = rule_values(config.rule)
    net = ActorCritic(build_cell(config.model), env.observation_size, 1, rule["hidden_head"], rule["head_layers"])
    like = net.init(jax.random.PRNGKey(0))
    members = np.flatnonzero(dataset["task.name"].values == task_name)
    leaves = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(like)[0]:
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        values = dataset["params." + ".".join(n for n in names if n != "params")].values[members]
        leaves.append(jnp.asarray(values[(slice(None), slice(None)) + tuple(slice(0, n) for n in leaf.shape)]))
    params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), leaves)
    return net, env, env_params, params, dataset["seed"].values[members]


CAPTIONS: dict[str, str] = {}


def new_figure(nrows: int, ncols: int, figsize, caption_height: float, **subplots):
    """A constrained-layout figure: axes on top, a caption strip of ``caption_height`` (fraction) below."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1 - caption_height, caption_height])
    return fig, top, bottom, top.subplots(nrows, ncols, **subplots)


def caption(strip, text: str) -> None:
    """Write ``text`` into the caption strip (and keep it for ``captions.md``)."""
    CAPTIONS[".".join(text.split(".")[:2])] = text
    width = int(17.5 * strip.figure.get_figwidth())  # characters of 7.5 pt text per line
    strip.text(0.01, 0.98, textwrap.fill(text, width), fontsize=7.5, va="top", ha="left")


def take(tree, member, snapshot=None):
    return jax.tree.map(lambda x: x[member] if snapshot is None else x[member, snapshot], tree)


def figure_landscapes(out, agents, snap_updates, rep, history):
    cols = [0, len(snap_updates) // 4, len(snap_updates) - 1]
    fig, top, strip, axes = new_figure(2, 3, (11, 7.2), 0.1, sharex=True, sharey=True)
    for row, task in enumerate(TASKS):
        net, env, env_params, params, seeds = agents[task]
        snaps = jax.tree.map(lambda x: x[rep[task], np.array(cols)], params)
        mu = jax.jit(jax.vmap(lambda p: policy.policy_landscape(
            net, env, p, THETAS, THETA_DOTS, env_params, history)))(snaps)
        for col, s in enumerate(cols):
            ax = axes[row, col]
            im = ax.pcolormesh(THETAS, THETA_DOTS, np.clip(np.asarray(mu[col]).T, -2, 2), cmap="RdBu_r",
                               vmin=-2, vmax=2, shading="nearest")
            ax.set_title(f"{task[-2:].upper()} seed {seeds[rep[task]]}, update {snap_updates[s]}", fontsize=9)
            ax.set_xticks([-np.pi, 0, np.pi], ["−π", "0 (up)", "π"])
        axes[row, 0].set_ylabel("dθ/dt (rad/s)")
    for ax in axes[1]:
        ax.set_xlabel("θ (rad)")
    top.colorbar(im, ax=axes, label="mean torque μ (clipped to ±2)", shrink=0.8)
    caption(strip, "Fig. 1b. Policy landscape: the mean μ(θ, dθ/dt) of the Gaussian policy, for PO (top) and FO "
            f"(bottom) agents early, mid and late in training (the member with the best final return). For PO and FO "
            f"alike, μ is read after driving the RNN from its zero (episode-start) state with the observations of the "
            f"last {history} steps (dt = 0.05 s) of the zero-torque free-swing trajectory that ends in (θ, dθ/dt), "
            "so a PO agent can infer dθ/dt from the history. Red: positive torque; blue: negative.")
    fig.savefig(out / "fig1b_policy_landscape.png", dpi=110)
    plt.close(fig)


def figure_ring(out, agents, geometry, snap_updates, rep, key):
    task = "pendulum-po"
    net, env, env_params, params, seeds = agents[task]
    g = geometry[task]
    m = rep[task]
    cols = [0, len(snap_updates) // 4, len(snap_updates) - 1]
    fig, top, strip, axes = new_figure(1, 4, (16, 5.4), 0.2)
    for ax, s in zip(axes, cols):
        ro = policy.closed_loop_rollout(net, env, take(params, m, s), key[m], env_params)
        proj = lambda x: (np.asarray(x) - np.asarray(g.pc_mean[m, s])) @ np.asarray(g.pcs[m, s]).T  # noqa: E731
        p = proj(ro.hidden.reshape(-1, ro.hidden.shape[-1]))
        sc = ax.scatter(p[:, 0], p[:, 1], c=angle_normalize(np.asarray(ro.theta).reshape(-1)), cmap="twilight",
                        vmin=-np.pi, vmax=np.pi, s=4)
        for fps, marker, name in ((g.goal_fps, "*", "FP, goal obs."), (g.hanging_fps, "D", "FP, hanging obs.")):
            x, valid, stable = (np.asarray(a[m, s]) for a in (fps.x, fps.valid, fps.stable))
            for k in np.flatnonzero(valid):
                q = proj(x[k][None])[0]
                kind = "stable" if stable[k] else "unstable"
                ax.scatter(q[0], q[1], marker=marker, s=220 if marker == "*" else 70, c="k" if stable[k] else "w",
                           edgecolors="k", linewidths=1.5, label=f"{name} ({kind})", zorder=3)
        if np.all(np.isfinite(g.goal_location[m, s])):
            q = proj(np.asarray(g.goal_location[m, s])[None])[0]
            ax.scatter(q[0], q[1], marker="o", s=110, c="none", edgecolors="r", linewidths=2,
                       label="goal location", zorder=3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=6.5, loc="best")
        r = take(g.ring, m, s)
        ax.set_title(f"update {snap_updates[s]}: ring {float(r.score):.2f}\n(cv {float(r.radius_cv):.2f}, "
                     f"PC1–2 {float(r.variance_fraction):.2f}, lock {float(r.circular_corr):.2f})", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    top.colorbar(sc, ax=axes[2], label="θ (rad, 0 = up)")
    ax = axes[3]
    for t, colour in zip(TASKS, ("C0", "C1")):
        score = np.asarray(geometry[t].ring.score)
        ax.plot(snap_updates, np.median(score, 0), color=colour, lw=2, label=f"{t[-2:].upper()} median")
        ax.plot(snap_updates, score.T, color=colour, lw=0.5, alpha=0.5)
    ax.set_xlabel("update")
    ax.set_ylabel("ring score")
    ax.legend(fontsize=8)
    caption(strip, f"Fig. 1c. Hidden states of a PO agent (seed {seeds[m]}) over 5 closed-loop episodes (deterministic "
            "policy) in the top two principal components of that snapshot's states, coloured by θ. Stars: the fixed "
            "points of h ↦ F(h, o_goal), o_goal = (cos 0, sin 0); diamonds: those under the hanging observation "
            "(θ = π); filled = stable (max|λ| < 1), hollow = unstable. Red circle: the goal location (mean state when "
            "|θ| < 0.1 rad under the agent's own policy). "
            "Ring score = (PC1–2 variance fraction) × (phase locking max|⟨e^{i(φ∓θ)}⟩| of the angle φ on a circle "
            "fitted in PC1–2) × (1 − CV of the radius). Right: ring score over training for every seed (thin) and "
            "the median (thick), PO and FO.")
    fig.savefig(out / "fig1c_ring.png", dpi=110)
    plt.close(fig)


def figure_fp_goal(out, agents, geometry, snap_updates, rep):
    task = "pendulum-po"
    g = geometry[task]
    m = rep[task]
    seeds = agents[task][4]
    fig, top, strip, axes = new_figure(1, 3, (16, 5.6), 0.2)
    ax = axes[0]
    mean, pcs = np.asarray(g.pc_mean[m, -1]), np.asarray(g.pcs[m, -1])
    path = (np.asarray(g.goal_fp.x[m]) - mean) @ pcs.T
    returns = np.asarray(g.episode_return[m])
    ax.plot(path[:, 0], path[:, 1], color="0.7", lw=1, zorder=1)
    sc = ax.scatter(path[:, 0], path[:, 1], c=returns, cmap="viridis", s=30, zorder=2, label="stable FP, goal obs.")
    hanging = (np.asarray(g.hanging_fp.x[m]) - mean) @ pcs.T
    ax.plot(hanging[:, 0], hanging[:, 1], color="0.7", lw=0.8, ls="--", zorder=1)
    ax.scatter(hanging[:, 0], hanging[:, 1], c=returns, cmap="viridis", s=22, marker="D", zorder=2,
               label="FP, hanging obs.")
    goal = (np.asarray(g.goal_location[m, -1]) - mean) @ pcs.T
    ax.scatter(*goal, marker="o", s=120, facecolors="none", edgecolors="r", linewidths=2, label="final goal location")
    ax.legend(fontsize=8)
    ax.set_xlabel("PC1 (final snapshot)")
    ax.set_ylabel("PC2 (final snapshot)")
    ax.set_title(f"fixed-point paths over training, PO seed {seeds[m]}", fontsize=9)
    top.colorbar(sc, ax=ax, label="episode return")
    r2g = np.asarray(policy.reward_to_go(g.episode_return))
    results = {}
    final_fp = np.asarray(g.goal_fp.x[:, -1:])
    for ax, name, distance in (
        (axes[1], "distance to goal location", np.asarray(g.fp_goal_distance)),
        (axes[2], "distance to final stable FP", np.linalg.norm(np.asarray(g.goal_fp.x) - final_fp, axis=-1)),
    ):
        d, r = distance[:, :-1], r2g[:, :-1]  # the final snapshot's reward-to-go is 0 by definition
        fit = jax.tree.map(float, linear_regression(d.ravel(), r.ravel()))
        ok = np.isfinite(d) & np.isfinite(r)
        demean = lambda a: np.where(ok, a - np.nanmean(np.where(ok, a, np.nan), 1, keepdims=True), np.nan)  # noqa: E731
        seeds_used = int(np.sum(ok.any(1)))
        within = jax.tree.map(float, linear_regression(demean(d).ravel(), demean(r).ravel(),
                                                       num_intercepts=max(seeds_used, 1)))
        results[name] = {"pooled": dataclasses.asdict(fit), "within_seed": dataclasses.asdict(within)}
        x = d.ravel()
        for i in range(distance.shape[0]):
            ax.scatter(distance[i, :-1], r2g[i, :-1], s=10, alpha=0.7, label=f"seed {seeds[i]}")
        xs = np.linspace(np.nanmin(x), np.nanmax(x), 10) if np.isfinite(x).any() else np.zeros(2)
        ax.plot(xs, fit.slope * xs + fit.intercept, "k", lw=2)
        ax.set_title(f"pooled: slope {fit.slope:.0f} [95% CI {fit.ci_low:.0f}, {fit.ci_high:.0f}], r = {fit.r:.2f}, "
                     f"p = {fit.p:.1e}, n = {int(fit.n)}\nwithin seeds: slope {within.slope:.0f} "
                     f"[{within.ci_low:.0f}, {within.ci_high:.0f}], r = {within.r:.2f}, p = {within.p:.1e}", fontsize=9)
        ax.set_xlabel(f"stable FP {name}")
        ax.set_ylabel("reward-to-go  R_final − R")
    axes[1].legend(fontsize=7, ncol=2)
    caption(strip, "Fig. 1d. Left: positions of the stable fixed point of h ↦ F(h, o_goal) nearest the goal location "
            "(dots) and of the fixed point under the hanging observation nearest the hanging location (diamonds, "
            "either stability) at every snapshot of one PO agent, in the final snapshot's PC1–2, coloured by the mean "
            "return of 5 closed-loop episodes. Middle: across PO seeds × snapshots, reward-to-go (final return − return at "
            "that snapshot) against the distance of the stable FP to the goal location (the mean hidden state "
            "visited with |θ| < 0.1 rad under the agent's own policy at that snapshot; missing where the agent never "
            "got there or no stable FP exists); black: pooled OLS fit (scipy.stats.linregress-equivalent, slope with "
            "95 % CI); 'within seeds': the same after subtracting each seed's means (fixed effects, n − 1 − seeds "
            "degrees of freedom), which removes differences between seeds. "
            "Right: the same against the distance of the stable FP to its final position (the paper's 'proximity of "
            "the FP to its final state').")
    fig.savefig(out / "fig1d_fp_goal.png", dpi=110)
    plt.close(fig)
    return results


def figure_timescales(out, agents, geometry, snap_updates, rep, tau_stride):
    fig, top, strip, axes = new_figure(1, 2, (13, 5.4), 0.16, sharey=True)
    for ax, task in zip(axes, TASKS):
        g = geometry[task]
        m = rep[task]
        mean, low, high = (np.asarray(a[m]) for a in (g.tau.mean, g.tau.low, g.tau.high))
        for i in range(mean.shape[-1]):
            err = np.stack([mean[:, i] - np.maximum(low[:, i], 0.5), high[:, i] - mean[:, i]])
            ax.errorbar(snap_updates, mean[:, i], yerr=err, lw=1.2, capsize=1.5, elinewidth=0.6, label=f"τ{i + 1}")
        ax.plot(snap_updates, np.median(np.asarray(g.tau.mean[..., 0]), 0), "k--", lw=1, label="τ1, median of seeds")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1.0)
        ax.set_xlabel("update")
        ax.set_title(f"{task[-2:].upper()} seed {agents[task][4][m]}", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
    axes[0].set_ylabel("integration timescale τ (steps of 0.05 s)")
    steps = "every step" if tau_stride == 1 else f"every {tau_stride}th step"
    caption(strip, "Fig. 1e. Top-5 stimulus-integration timescales τ_i = |1/ln|λ_i|| of the recurrence Jacobian "
            "∂F/∂h at (h_{t−1}, o_t) along 1,000 closed-loop steps (5 episodes × 200, deterministic policy; "
            f"linearised at {steps}); modes with |λ| ≥ 1 count as τ = 1 (Singh's 'fix' filter) and a complex-conjugate "
            "pair counts once. Per step the five largest τ are kept; lines are their means across steps, bars 99 % "
            "t-intervals across steps (treating steps as independent; bars reaching the bottom edge extend below "
            "τ = 1). Dashed: median over seeds of the mean τ1.")
    fig.savefig(out / "fig1e_timescales.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the study's scale (packaged config huang-pendulum)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--tau-stride", type=int, default=None,
                        help="linearise every n-th step (default 10; 1 with --full)")
    parser.add_argument("--history", type=int, default=50, help="free-swing steps before reading the policy")
    parser.add_argument("--snapshot-batch", type=int, default=8, help="snapshots analysed at once per member")
    parser.add_argument("--out", default="runs/pendulum_example")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    tau_stride = args.tau_stride or (1 if args.full else 10)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = make_config(args.full, args.seeds, args.updates)
    dataset = population.run(config, out=out / "run", quiet=args.quiet)
    snap_updates = dataset["snapshot_update"].values
    agents, geometry, rep, keys = {}, {}, {}, {}
    for task in TASKS:
        agents[task] = load_agents(dataset, config, task)
        net, env, env_params, params, seeds = agents[task]
        keys[task] = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32) + 1000)
        if not args.quiet:
            print(f"analysing {task}: {len(seeds)} members × {len(snap_updates)} snapshots", flush=True)
        geometry[task] = policy.analyze_population(net, env, params, keys[task], env_params,
                                                   snapshot_batch=args.snapshot_batch, tau_stride=tau_stride)
        rep[task] = int(np.argmax(np.asarray(geometry[task].episode_return[:, -1])))
    figure_landscapes(out, agents, snap_updates, rep, args.history)
    figure_ring(out, agents, geometry, snap_updates, rep, keys["pendulum-po"])
    regressions = figure_fp_goal(out, agents, geometry, snap_updates, rep)
    figure_timescales(out, agents, geometry, snap_updates, rep, tau_stride)
    summary = {"config": config.run.name, "snapshot_updates": snap_updates.tolist(), "tau_stride": tau_stride,
               "po_regressions": regressions}
    for task in TASKS:
        g = geometry[task]
        summary[task] = {
            "seeds": agents[task][4].tolist(),
            "return_first_last": np.asarray(g.episode_return)[:, [0, -1]].tolist(),
            "ring_score_first_last": np.asarray(g.ring.score)[:, [0, -1]].tolist(),
            "has_stable_goal_fp_last": np.asarray(g.goal_fp.found)[:, -1].tolist(),
            "hanging_fp_unstable_dims_last": np.asarray(g.hanging_fp.num_unstable)[:, -1].tolist(),
            "tau_mean_first_last": np.asarray(g.tau.mean)[:, [0, -1]].tolist(),
        }
    (out / "captions.md").write_text("".join(f"**{k}**{v[len(k):]}\n\n" for k, v in CAPTIONS.items()))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("po_regressions",)}, indent=1))
    print(f"figures in {out}")


if __name__ == "__main__":
    main()
