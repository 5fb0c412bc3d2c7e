"""Figures of the Huang, Singh & Rajan (2024) reproduction (:mod:`jaxrnn.studies.huang`).

One set per algorithm (file names end in ``_ppo`` / ``_sac``); every figure carries a caption
strip that names the algorithm, the number of networks and the scale, and says why a panel is
empty when it is. :func:`draw_all` returns those reasons (``notes``) for the claims table.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxrnn.analysis import policy  # noqa: E402
from jaxrnn.analysis.stats import linear_regression  # noqa: E402
from jaxrnn.tasks.pendulum import angle_normalize  # noqa: E402

TARGET = -250.0
TASKS = ("pendulum-po", "pendulum-fo")


def new_figure(nrows: int, ncols: int, figsize, caption_height: float, **subplots):
    """A constrained-layout figure: axes on top, a caption strip of ``caption_height`` (fraction) below."""
    fig = plt.figure(figsize=figsize, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1 - caption_height, caption_height])
    return fig, top, bottom, top.subplots(nrows, ncols, squeeze=False, **subplots)


def caption(strip, text: str) -> None:
    width = int(17.5 * strip.figure.get_figwidth())  # characters of 7.5 pt text per line
    strip.text(0.01, 0.98, textwrap.fill(text, width), fontsize=7.5, va="top", ha="left")


def empty(ax, why: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, textwrap.fill(why, 40), ha="center", va="center", fontsize=9, color="0.3",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def representative(analysis) -> int:
    """The member with the best final return (shown in single-agent panels)."""
    return int(np.nanargmax(analysis["val_return"][:, -1]))


def iteration_steps(result) -> int:
    """Environment steps per iteration (1,024 at the cpu and full scales)."""
    rule = result["config"].members()[0].rule
    return int(rule["num_envs"] * rule["num_steps"])


def scale_words(result) -> str:
    config = result["config"]
    n = len(result["tasks"]["pendulum-po"]["analysis"]["seeds"])
    return (f"{result['name']}; {n} seeds per task; {config.run.num_updates} iterations of "
            f"{iteration_steps(result):,} environment steps; scale '{result['scale']}'")


def decisiveness(landscape: np.ndarray) -> np.ndarray:
    """Mean ``|clip(μ, ±2)|/2`` over the (θ, θ̇) grid: 0 = no torque anywhere, 1 = bang-bang."""
    return np.mean(np.abs(np.clip(landscape, -2, 2)) / 2, axis=(-2, -1))


def figure_learning(out: Path, result) -> None:
    algo = result["algorithm"]
    fig, top, strip, axes = new_figure(1, 2, (12, 4.6), 0.2, sharey=True)
    finals = {}
    for ax, task in zip(axes[0], ("pendulum-po", "pendulum-fo")):
        a = result["tasks"][task]["analysis"]
        curves, updates = a["val_return"], a["eval_update"]
        for seed, curve in zip(a["seeds"], curves):
            ax.plot(updates, curve, lw=1, label=f"seed {seed}: final {curve[-1]:.0f}, best {np.nanmax(curve):.0f}")
        ax.axhline(TARGET, color="k", ls="--", lw=1, label="target −250")
        finals[task] = curves[:, -1]
        ax.set_title(f"{task[-2:].upper()}: mean final {np.mean(curves[:, -1]):.0f}", fontsize=10)
        ax.set_xlabel(f"iteration ({iteration_steps(result):,} env steps each)")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("mean return, 20 deterministic episodes")
    caption(strip, f"Learning curves ({scale_words(result)}). Each line is one agent's mean return over the same 20 "
            "deterministic Pendulum-v1 episodes (action = policy mean) after every iteration; a solved swing-up "
            "scores about −150 to −200. Dashed: the study's target for the mean over seeds (−250). These are "
            "the agents analysed in the other figures; do not read a single seed's curve as typical.")
    fig.savefig(out / f"fig1a_learning_{algo}.png", dpi=110)
    plt.close(fig)


def figure_policy(out: Path, result) -> dict:
    algo = result["algorithm"]
    fig, top, strip, axes = new_figure(2, 4, (17, 7.6), 0.14)
    snap_updates = result["snapshot_updates"]
    for row, task in enumerate(("pendulum-po", "pendulum-fo")):
        a = result["tasks"][task]["analysis"]
        m = representative(a)
        snaps = a["landscape_snapshots"]
        cols = [0, int(np.flatnonzero(snaps == len(snap_updates) // 4)[0]), len(snaps) - 1]
        for col, s in enumerate(cols):
            ax = axes[row, col]
            im = ax.pcolormesh(a["landscape_thetas"], a["landscape_theta_dots"], np.clip(a["landscape"][m, s].T, -2, 2),
                               cmap="RdBu_r", vmin=-2, vmax=2, shading="nearest")
            ax.set_title(f"{task[-2:].upper()} seed {a['seeds'][m]}, iteration {snap_updates[snaps[s]]}", fontsize=9)
            ax.set_xticks([-np.pi, 0, np.pi], ["−π", "0 (up)", "π"])
            ax.set_ylabel("θ̇ (rad/s)")
        ax = axes[row, 3]
        d = decisiveness(a["landscape"])
        for i, seed in enumerate(a["seeds"]):
            ax.plot(snap_updates[snaps], d[i], marker="o", ms=3, lw=1, label=f"seed {seed}")
        ax.set_ylim(0, 1)
        ax.set_ylabel("decisiveness mean|μ|/2")
        ax.set_title(f"{task[-2:].upper()}: decisiveness over training", fontsize=9)
        ax.legend(fontsize=6)
    for ax in axes[1, :3]:
        ax.set_xlabel("θ (rad)")
    axes[1, 3].set_xlabel("iteration")
    top.colorbar(im, ax=axes[:, :3], label="mean torque μ (clipped to ±2)", shrink=0.8)
    flat = all(decisiveness(result["tasks"][t]["analysis"]["landscape"])[:, 0].max() < 0.05 for t in TASKS)
    blank = (" An all-white iteration-0 panel is not missing data: the untrained policy outputs ≈ 0 torque "
             "everywhere." if flat else "")
    caption(strip, f"Fig. 1b, {scale_words(result)}.{blank} Policy landscape μ(θ, θ̇): the Gaussian policy's mean after "
            "driving the RNN from its zero (episode-start) state with the observations of the zero-torque "
            f"free-swing trajectory that ends in (θ, θ̇) ({result['settings']['history']} steps, so a PO agent can "
            "infer θ̇), for the PO (top) and FO (bottom) agent with the best final return. Red: positive torque. "
            "Right: decisiveness (mean |μ| clipped at 2, divided by 2, over the grid) of every seed. Landscapes far "
            "from the states the agent visits are extrapolations and should not be read as its behaviour.")
    fig.savefig(out / f"fig1b_policy_{algo}.png", dpi=110)
    plt.close(fig)
    return {}


def figure_ring(out: Path, result) -> dict:
    algo = result["algorithm"]
    task = "pendulum-po"
    a = result["tasks"][task]["analysis"]
    net, env, env_params, params, seeds, _ = result["tasks"][task]["agents"]
    m = representative(a)
    snap_updates = result["snapshot_updates"]
    cols = [0, len(snap_updates) // 4, len(snap_updates) - 1]
    fig, top, strip, axes = new_figure(1, 4, (17, 5.4), 0.22)
    key = jax.random.split(jax.random.PRNGKey(int(seeds[m]) + 1000))[0]  # analyze_agent's rollout key
    for ax, s in zip(axes[0], cols):
        p = jax.tree.map(lambda x: x[m, s], params)
        ro = policy.closed_loop_rollout(net, env, p, key, env_params, result["settings"]["episodes"])
        mean, pcs = a["pc_mean"][m, s], a["pcs"][m, s]
        proj = lambda x: (np.asarray(x) - mean) @ pcs.T  # noqa: E731
        q = proj(np.asarray(ro.hidden).reshape(-1, ro.hidden.shape[-1]))
        sc = ax.scatter(q[:, 0], q[:, 1], c=angle_normalize(np.asarray(ro.theta).reshape(-1)), cmap="twilight",
                        vmin=-np.pi, vmax=np.pi, s=4)
        if a["goal_fp_found"][m, s]:
            g = proj(a["goal_fp_x"][m, s][None])[0]
            ax.scatter(*g, marker="*", s=250, c="k", edgecolors="w", label="stable FP, goal obs.", zorder=3)
        if a["hanging_fp_found"][m, s]:
            h = proj(a["hanging_fp_x"][m, s][None])[0]
            stable = bool(a["hanging_fp_stable"][m, s])
            ax.scatter(*h, marker="D", s=70, c="k" if stable else "w", edgecolors="k", linewidths=1.5,
                       label=f"FP, hanging obs. ({'stable' if stable else 'unstable'})", zorder=3)
        if np.all(np.isfinite(a["goal_location"][m, s])):
            g = proj(a["goal_location"][m, s][None])[0]
            ax.scatter(*g, marker="o", s=110, c="none", edgecolors="r", linewidths=2, label="goal location", zorder=3)
        ax.legend(fontsize=6.5, loc="best")
        ax.set_title(f"iteration {snap_updates[s]}: ring score {a['ring_score'][m, s]:.2f}", fontsize=9)
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    top.colorbar(sc, ax=axes[0, 2], label="θ (rad, 0 = up)")
    ax = axes[0, 3]
    score = a["ring_score"]
    ax.plot(snap_updates, score.T, color="C0", lw=0.6, alpha=0.6)
    ax.plot(snap_updates, np.median(score, 0), color="C0", lw=2, label="trained PO agents (median, thin: seeds)")
    base = a["ring_untrained_same_inputs"]
    ax.scatter(np.full(len(base), snap_updates[-1]), base, color="C3", marker="x", zorder=3,
               label="untrained net, same seed, fed the final agent's observations")
    ax.set_ylim(0, 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("ring score")
    ax.legend(fontsize=7)
    caption(strip, f"Fig. 1c, {scale_words(result)}. Hidden states of the PO agent with the best final return (seed "
            f"{seeds[m]}) over {result['settings']['episodes']} closed-loop episodes (deterministic policy) in the "
            "top two principal components of that snapshot's states, coloured by θ. Star: the stable fixed point of "
            "h ↦ F(h, o_goal) nearest the goal location (red circle: mean state when |θ| < 0.1 rad); diamond: the "
            "fixed point under the hanging observation (θ = π) nearest the hanging states; a marker is absent when no "
            "such fixed point was found. Ring score = (PC1–2 variance fraction) × (phase locking of the ring angle "
            "to θ) × (1 − CV of the radius). Right: ring score over training (every seed) and, as the baseline a ring "
            "must beat, the same seed's untrained network driven open loop by the final agent's observations: the "
            "cos θ, sin θ inputs alone already draw a ring, so only a score above those crosses means training "
            f"made one (one cross per seed, {len(seeds)} in all; crosses may overlap). The iteration-0 line is the "
            "untrained network driven by its own (poor) closed-loop behaviour, not this baseline.")
    fig.savefig(out / f"fig1c_ring_{algo}.png", dpi=110)
    plt.close(fig)
    return {}


def fp_distance_to_final(a) -> np.ndarray:
    """``‖h*_s − h*_final‖`` of the stable goal FP per member × snapshot (NaN where none was found)."""
    x = np.where(a["goal_fp_found"][..., None], a["goal_fp_x"], np.nan)
    return np.linalg.norm(x - x[:, -1:], axis=-1)


def figure_fp(out: Path, result) -> dict:
    algo = result["algorithm"]
    a = result["tasks"]["pendulum-po"]["analysis"]
    seeds = a["seeds"]
    m = representative(a)
    snap_updates = result["snapshot_updates"]
    fig, top, strip, axes = new_figure(1, 2, (13, 5.6), 0.24)
    notes = {}
    ax = axes[0, 0]
    found = a["goal_fp_found"][m]
    returns = a["episode_return"][m]
    if found.any():
        mean, pcs = a["pc_mean"][m, -1], a["pcs"][m, -1]
        path = (a["goal_fp_x"][m][found] - mean) @ pcs.T
        ax.plot(path[:, 0], path[:, 1], color="0.7", lw=1, zorder=1)
        sc = ax.scatter(path[:, 0], path[:, 1], c=returns[found], cmap="viridis", s=30, zorder=2)
        if np.all(np.isfinite(a["goal_location"][m, -1])):
            goal = (a["goal_location"][m, -1] - mean) @ pcs.T
            ax.scatter(*goal, marker="o", s=120, facecolors="none", edgecolors="r", linewidths=2,
                       label="final goal location")
            ax.legend(fontsize=8)
        top.colorbar(sc, ax=ax, label="mean episode return at that snapshot")
        ax.set_xlabel("PC1 (final snapshot)")
        ax.set_ylabel("PC2 (final snapshot)")
        ax.set_title(f"stable goal FP over training, PO seed {seeds[m]} ({found.sum()}/{len(found)} snapshots)",
                     fontsize=9)
    else:
        empty(ax, f"PO seed {seeds[m]}: no stable fixed point under the goal observation at any snapshot")
        notes["fp_path"] = "no stable goal FP at any snapshot of the best PO seed"
    ax = axes[0, 1]
    distance = fp_distance_to_final(a)
    r2g = policy.reward_to_go(a["episode_return"])
    final_found = a["goal_fp_found"][:, -1]
    d, r = distance[:, :-1], r2g[:, :-1]
    ok = np.isfinite(d) & np.isfinite(r)
    seeds_used = int(np.sum(ok.any(1)))
    if ok.sum() >= 3:
        fit = jax.tree.map(float, linear_regression(d.ravel(), r.ravel()))
        for i in range(len(seeds)):
            if ok[i].any():
                ax.scatter(d[i], r[i], s=10, alpha=0.7, label=f"seed {seeds[i]}")
        xs = np.linspace(np.nanmin(d[ok]), np.nanmax(d[ok]), 10)
        ax.plot(xs, fit.slope * xs + fit.intercept, "k", lw=2)
        ax.set_title(f"slope {fit.slope:.0f} [95 % CI {fit.ci_low:.0f}, {fit.ci_high:.0f}], r = {fit.r:.2f}, "
                     f"p = {fit.p:.1e}, n = {int(fit.n)} from {seeds_used}/{len(seeds)} seeds", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
        ax.set_xlabel("distance of the stable goal FP to its final position")
        ax.set_ylabel("reward-to-go  R_final − R")
    else:
        why = (f"no stable goal FP at the final snapshot for {int((~final_found).sum())}/{len(seeds)} PO seeds; "
               f"{int(ok.sum())} (distance, reward-to-go) pairs — too few for a regression")
        empty(ax, why)
        notes["fp_regression"] = why
    missing = int((~final_found).sum())
    caption(strip, f"Fig. 1d, {scale_words(result)}. Left: the stable fixed point of h ↦ F(h, o_goal) nearest the goal "
            "location at every snapshot where one exists, for the PO agent with the best final return, in the final "
            f"snapshot's PC1–2, coloured by the mean return of {result['settings']['episodes']} closed-loop episodes. "
            "Right, the paper's metric: across PO seeds × snapshots, reward-to-go (final return − return at that "
            "snapshot) against the distance of the stable goal FP to its position at the final snapshot; black: OLS "
            f"fit (slope with 95 % CI, Pearson r, two-sided p). Seeds without a stable goal FP at the final snapshot "
            f"({missing}/{len(seeds)}) have no final position and drop out, as do snapshots without one. Points of "
            "one seed are not independent (consecutive snapshots), so p overstates the evidence; and both "
            "quantities change most when the agent learns, so a high pooled r can reflect the before/after-learning "
            "contrast (points near reward-to-go 0 vs far above it) rather than a graded relation: read the points, "
            "not only the line.")
    fig.savefig(out / f"fig1d_fp_{algo}.png", dpi=110)
    plt.close(fig)
    return notes


def figure_timescales(out: Path, result) -> dict:
    algo = result["algorithm"]
    fig, top, strip, axes = new_figure(1, 2, (14, 5.4), 0.2, sharey=True)
    snap_updates = result["snapshot_updates"]
    for ax, task in zip(axes[0], ("pendulum-po", "pendulum-fo")):
        a = result["tasks"][task]["analysis"]
        m = representative(a)
        mean, low, high = a["tau_mean"][m], a["tau_low"][m], a["tau_high"][m]
        for i in range(mean.shape[-1]):
            err = np.stack([mean[:, i] - np.maximum(low[:, i], 0.5), np.maximum(high[:, i] - mean[:, i], 0)])
            ax.errorbar(snap_updates, mean[:, i], yerr=err, lw=1.2, capsize=1.5, elinewidth=0.6, label=f"τ{i + 1}")
        ax.plot(snap_updates, np.median(a["tau_mean"][..., 0], 0), "k--", lw=1, label="τ1, median of seeds")
        ax.set_yscale("log")
        ax.set_ylim(bottom=1.0)
        ax.set_xlabel("iteration")
        ax.set_title(f"{task[-2:].upper()} seed {a['seeds'][m]}", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
    axes[0, 0].set_ylabel("integration timescale τ (steps of 0.05 s)")
    stride = result["settings"]["tau_stride"]
    steps = "every step" if stride == 1 else f"every {stride}th step"
    caption(strip, f"Fig. 1e, {scale_words(result)}. Top-5 stimulus-integration timescales τ_i = |1/ln|λ_i|| of the "
            f"recurrence Jacobian ∂F/∂h at (h_(t−1), o_t) along {result['settings']['episodes']} closed-loop episodes "
            f"× 200 steps (deterministic policy; linearised at {steps}) of the agent with the best final return; "
            "modes with |λ| ≥ 1 count as τ = 1 and a complex pair once. Lines: mean over steps; bars: 99 % circular "
            "block-bootstrap intervals (Politis–White block length, bias-corrected), which respect the strong "
            "autocorrelation of consecutive steps (a t-interval treating steps as independent is several times "
            "narrower). Dashed: median over seeds of τ1. Bars reaching the bottom edge extend below τ = 1. One agent "
            "per panel: its τ1 jumps between snapshots are mostly within the intervals; whether τ explores then "
            "compresses is judged on every PO seed's mean τ1 in the claims table, not on this panel.")
    fig.savefig(out / f"fig1e_timescales_{algo}.png", dpi=110)
    plt.close(fig)
    return {}


def draw_all(out: Path, result) -> dict:
    """Every figure of one algorithm; returns the reasons of empty panels (for the claims)."""
    notes = {}
    figure_learning(out, result)
    for draw in (figure_policy, figure_ring, figure_fp, figure_timescales):
        notes.update(draw(out, result))
    return notes


def missing_algorithm_figures(out: Path, algorithm: str, name: str) -> None:
    """Placeholder figures that say the algorithm is not in this installation (never a silent gap)."""
    from jaxrnn.studies.huang import FIGURES

    for file in FIGURES:
        if not file.endswith(f"_{algorithm}.png"):
            continue
        fig, top, strip, axes = new_figure(1, 1, (7, 3), 0.25)
        empty(axes[0, 0], f"{name} is not available in this installation (rule 'recurrent_sac' or its packaged "
                          "config 'huang-pendulum-sac' is missing), so this figure was not computed.")
        caption(strip, f"{file}: not computed — {name} missing.")
        fig.savefig(out / file, dpi=80)
        plt.close(fig)
