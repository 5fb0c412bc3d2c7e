"""Figures of the McMahan et al. (2021) reproduction: learning, rules and complexity (Figs. 0–2).

The noise figures (3–5) are in :mod:`jaxrnn.studies.mcmahan_figures_noise`; both draw from the
quantities of :mod:`jaxrnn.studies.mcmahan_quantities`. Every panel says how many networks it
shows (only members that met the criterion), every silhouette is printed with its permutation
p-value, the permutation null's mean and the same statistic on the untrained (update-0)
networks. MDS panels are classical MDS of the distances (drawing only: scores are computed on
the full matrices, as the paper did).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxrnn.analysis.embedding import mds  # noqa: E402
from jaxrnn.studies.mcmahan_analysis import RULE_NAMES, RULES  # noqa: E402
from jaxrnn.studies.mcmahan_config import FIG_NOISE, STUDY_NOISE  # noqa: E402

COLORS = {"bptt": "tab:red", "ga": "tab:green", "hebbian": "tab:orange", "full_force": "tab:blue"}
NOISE_COLORS = {0.1: "tab:cyan", 0.5: "tab:purple", 1.0: "tab:brown"}
TASK_NAMES = {"rdm": "RDM", "cdi": "CDI"}


def fmt(x, digits=2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def sep_text(pair: dict, what: str = "s") -> str:
    """``s = 0.12 (p = 0.030, null 0.00; untrained 0.01)`` or why it is missing."""
    t, u = pair["trained"], pair["untrained"]
    if not t.ok:
        return f"{what}: not computed ({t.note})"
    p = "" if t.p_value is None else f"p = {t.p_value:.3f}, "
    return f"{what} = {fmt(t.value)} ({p}null {fmt(t.null_mean)}; untrained {fmt(u.value)})"


def count_text(counts: dict, names=RULE_NAMES) -> str:
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in counts.items())


def header(fig, context: dict, title: str) -> None:
    """Title and the scale line, wrapped to the figure's width (about 13 characters per inch at 9 pt)."""
    width = max(60, int(fig.get_figwidth() * 13))
    fig.suptitle("\n".join(textwrap.wrap(title, width) + textwrap.wrap(context["line"], width)), fontsize=9)


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mds_scatter(ax, D: np.ndarray, labels, colors: dict, names: dict, *, jitter: float = 0.0, seed: int = 0,
                size: float = 16) -> None:
    """Classical MDS of ``D`` drawn by label; ``jitter`` (fraction of the range) separates identical points."""
    if len(D) < 3 or not np.all(np.isfinite(D)):
        why = ("no network: none trained\nat this scale or none met\nthe criterion (members.md)" if len(D) == 0
               else f"{len(D)} networks met the criterion:\nno embedding")
        ax.text(0.5, 0.5, why, ha="center", va="center",
                transform=ax.transAxes, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    Y = np.asarray(mds(D, dims=2))
    if jitter:
        span = np.ptp(Y, axis=0)
        span = np.where(span > 0, span, 1.0)
        Y = Y + jitter * span * np.random.default_rng(seed).standard_normal(Y.shape)
    labels = np.asarray(labels)
    for value in dict.fromkeys(labels.tolist()):
        m = labels == value
        ax.scatter(Y[m, 0], Y[m, 1], s=size, c=colors.get(value, "k"), label=f"{names.get(value, value)} ({m.sum()})",
                   alpha=0.8, edgecolors="none")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=6, loc="best")


# ----------------------------------------------------------------------------- Fig. 0: learning


def fig0_learning(path: Path, table: dict, context: dict) -> None:
    """Fraction of members meeting the criterion and updates to it, per rule × task × noise."""
    tasks = [t for t in ("rdm", "cdi") if np.any(table["task"] == t)]
    tasks += sorted({t for t in table["task"] if t.startswith("ncdi")}, key=lambda t: int(t.split("-")[1]))
    fig, axes = plt.subplots(2, 1, figsize=(12.5, 6.5), sharex=True)
    width = 0.8 / len(RULES)
    xt = np.arange(len(tasks))
    for r, rule in enumerate(RULES):
        for level in STUDY_NOISE:
            frac, upd = [], []
            for task in tasks:
                m = (table["rule"] == rule) & (table["task"] == task) & np.isclose(table["noise"], level)
                frac.append(np.mean(table["met"][m]) if m.any() else np.nan)
                upd.append(table["converged_update"][m & table["met"]])
            x = xt + (r - 1.5) * width + (STUDY_NOISE.index(level) - 1) * width / 4
            axes[0].scatter(x, frac, c=COLORS[rule], marker="o^s"[STUDY_NOISE.index(level)], s=22,
                            label=f"{RULE_NAMES[rule]}, σ = {level:g}")
            for xi, u in zip(x, upd):
                if len(u):
                    axes[1].scatter(np.full(len(u), xi), u, c=COLORS[rule], marker="o^s"[STUDY_NOISE.index(level)],
                                    s=8, alpha=0.7)
    for ax in axes:
        ax.set_xticks(xt, [TASK_NAMES.get(t, t.upper()) for t in tasks])
        for x in xt[:-1] + 0.5:
            ax.axvline(x, c="0.85", lw=0.8)
    axes[0].axhline(0.9, c="k", ls=":", lw=0.8)
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("fraction meeting the criterion")
    axes[0].legend(fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.005, 1.0))  # outside: never hides a marker
    axes[1].set_ylabel("updates to criterion\n(BPTT: Adam steps, GA: generations,\nH: 10 trials, FF: 1 trial)")
    axes[1].set_yscale("log")
    n_met, n = int(table["met"].sum()), len(table["met"])
    header(fig, context, f"Learning: {n_met} of {n} networks met the 90 % criterion (markers: study noise σ)")
    fig.tight_layout()
    save(fig, path)


# --------------------------------------------------------------------------- Fig. 1a–b, e


def _sorted_block(result, name: str, idx: np.ndarray, labels: np.ndarray):
    order = np.argsort([RULES.index(r) if r in RULES else 99 for r in labels], kind="stable")
    sub = idx[order]
    return np.asarray(result[name].values)[np.ix_(sub, sub)], labels[order]


def fig1ab_svcca(path: Path, q: dict, trained, context: dict) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    for row, task in enumerate(("rdm", "cdi")):
        f1 = q["fig1"][task]
        idx = f1["idx"]
        labels = q["sel"]["rule"][idx]
        a, b = axes[row]
        if len(idx) < 2:
            for ax in (a, b):
                ax.text(0.5, 0.5, f"{len(idx)} networks met the criterion", ha="center", transform=ax.transAxes)
            continue
        D, sorted_labels = _sorted_block(trained, "svcca_distance", idx, labels)
        im = a.imshow(D, cmap="viridis", vmin=0, vmax=max(1e-6, float(np.nanmax(D))))
        fig.colorbar(im, ax=a, fraction=0.046, label="SVCCA distance (1 − mean CCA)")
        edges = np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 0.5
        for e in edges:
            a.axhline(e, c="w", lw=0.8)
            a.axvline(e, c="w", lw=0.8)
        starts = np.r_[0, edges + 0.5]
        ends = np.r_[edges + 0.5, len(D)]
        a.set_xticks((starts + ends) / 2 - 0.5, [RULE_NAMES[sorted_labels[int(s)]] for s in starts], fontsize=7)
        a.set_yticks((starts + ends) / 2 - 0.5, [RULE_NAMES[sorted_labels[int(s)]] for s in starts], fontsize=7)
        a.set_title(f"{TASK_NAMES[task]}, σ = {FIG_NOISE:g}: SVCCA distances ({count_text(f1['counts'])})\n"
                    + sep_text(f1["hebbian_gap"], "Hebbian gap"), fontsize=7)
        mds_scatter(b, np.asarray(trained.svcca_distance.values)[np.ix_(idx, idx)], labels, COLORS, RULE_NAMES)
        b.set_title(f"MDS of the SVCCA distances\nsilhouette by rule: {sep_text(f1['svcca'])}\n"
                    f"among BPTT/GA/FF: {sep_text(f1['svcca_others'])}", fontsize=7)
    header(fig, context, f"Fig. 1a–b: representations by learning rule (SVCCA; silhouette: {context['convention']})")
    fig.tight_layout()
    save(fig, path)


def fig1e_topology(path: Path, q: dict, trained, context: dict) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, task in zip(axes, ("rdm", "cdi")):
        f1 = q["fig1"][task]
        idx = f1["idx"]
        labels = q["sel"]["rule"][idx]
        sig = np.asarray(trained.topology_signature.values)[idx]
        distinct = len({tuple(s) for s in np.round(sig, 6)})
        mds_scatter(ax, np.asarray(trained.topology_distance.values)[np.ix_(idx, idx)], labels, COLORS, RULE_NAMES,
                    jitter=0.02, seed=1)
        ax.set_title(f"{TASK_NAMES[task]}, σ = {FIG_NOISE:g}: attractor-topology MDS "
                     f"({len(idx)} networks, {distinct} distinct signatures)\n"
                     f"silhouette by rule: {sep_text(f1['topology'])}", fontsize=7)
    header(fig, context, "Fig. 1e: attractor topology by learning rule (McMahan signatures; points jittered by 2 %)")
    fig.tight_layout()
    save(fig, path)


# ------------------------------------------------------------------------------- Fig. 1d


def _pcs(activity: np.ndarray):
    mean = activity.mean(0)
    _, _, Vt = np.linalg.svd(activity - mean, full_matrices=False)
    return lambda x: (x - mean) @ Vt[:2].T


def draw_attractors(ax, example: dict, *, cmap="coolwarm", vmax=0.5) -> None:
    """Fixed points of one network in the first two PCs of its activity; filled = stable."""
    proj = _pcs(example["activity"])
    traj = proj(example["activity"])
    ax.plot(traj[:, 0], traj[:, 1], c="0.85", lw=0.4, zorder=0)
    P, S, _ = example["x"].shape
    value = np.repeat(example["value"][:, None], S, axis=1)
    context = np.repeat(example["context"][:, None], S, axis=1)
    valid, stable = example["valid"], example["stable"]
    markers = {-1: "o", 0: "o", 1: "s", 2: "^", 3: "D", 4: "v", 5: "P"}
    for c in np.unique(context[valid]):
        for is_stable in (True, False):
            m = valid & (context == c) & (stable == is_stable)
            if not m.any():
                continue
            xy = proj(example["x"][m])
            kw = dict(c=value[m], cmap=cmap, vmin=-vmax, vmax=vmax) if is_stable else dict(
                facecolors="none", edgecolors=plt.get_cmap(cmap)((value[m] + vmax) / (2 * vmax)))
            ax.scatter(xy[:, 0], xy[:, 1], marker=markers.get(int(c), "o"), s=30, linewidths=0.8, **kw)
    ax.set_xticks([])
    ax.set_yticks([])


def fig1d_attractors(path: Path, examples: dict, context: dict) -> None:
    fig, axes = plt.subplots(2, len(RULES), figsize=(3.6 * len(RULES), 7.4), squeeze=False)
    fig.subplots_adjust(top=0.80, hspace=0.35, wspace=0.15, left=0.03, right=0.88)  # room for the header and titles
    for row, task in enumerate(("rdm", "cdi")):
        for col, rule in enumerate(RULES):
            ax = axes[row, col]
            ex = examples.get((task, rule))
            if ex is None:
                ax.text(0.5, 0.5, "no network met the criterion", ha="center", transform=ax.transAxes, fontsize=7)
                ax.set_axis_off()
                continue
            draw_attractors(ax, ex)
            stable = [int(np.sum(ex["stable"][ex["value"] == v])) for v in (-0.5, -0.2, 0.0, 0.2, 0.5)]
            ax.set_title(f"{TASK_NAMES[task]} — {RULE_NAMES[rule]} (member {ex['member']})\n"
                         f"stable FPs per u (−.5 … .5): {stable}", fontsize=7)
    sm = plt.cm.ScalarMappable(cmap="coolwarm", norm=plt.Normalize(-0.5, 0.5))
    fig.colorbar(sm, cax=fig.add_axes((0.91, 0.15, 0.012, 0.6)), label="static input u")
    header(fig, context, "Fig. 1d: fixed points at u ∈ {−0.5, −0.2, 0, 0.2, 0.5} in the first two PCs of each network's "
                         "activity (filled: stable, open: unstable; CDI: ○ context 1, □ context 2)")
    save(fig, path)


# ------------------------------------------------------------------------------- Fig. 2


def silhouette_curve(ax, xs, pairs, label, color) -> None:
    """Trained silhouettes (with p) against ``xs``, the untrained ones dashed, the null mean dotted."""
    t = [p["trained"] for p in pairs]
    u = [p["untrained"] for p in pairs]
    val = [x.value if x.ok else np.nan for x in t]
    ax.plot(xs, val, "o-", c=color, label=f"{label} trained")
    ax.plot(xs, [x.value if x.ok else np.nan for x in u], "x--", c=color, alpha=0.6, label=f"{label} untrained")
    ax.plot(xs, [x.null_mean if x.ok else np.nan for x in t], ":", c=color, alpha=0.6, label=f"{label} null mean")
    for x, tt in zip(xs, t):
        if tt.ok:
            ax.annotate(f"p={tt.p_value:.2f}", (x, tt.value), fontsize=6, xytext=(2, 4), textcoords="offset points")
    if not any(x.ok for x in t):
        ax.text(0.5, 0.5, "no silhouette computed at any level\n(see the title / claims.md for why)", ha="center",
                va="center", transform=ax.transAxes, fontsize=7)
    if all(float(x).is_integer() for x in xs):
        ax.set_xticks(list(xs))  # N is a count: no 1.25 contexts
    ax.axhline(0, c="0.7", lw=0.6)


def fig2_complexity(path: Path, q: dict, trained, context: dict) -> None:
    f2 = q["fig2"]
    ns = f2["n"]
    fig = plt.figure(figsize=(3 * len(ns), 9.5))
    grid = fig.add_gridspec(3, len(ns))
    for col, n in enumerate(ns):
        idx = f2[n]["idx"]
        labels = q["sel"]["rule"][idx]
        for row, metric in enumerate(("svcca", "topology")):
            ax = fig.add_subplot(grid[row, col])
            D = np.asarray(trained[f"{metric}_distance"].values)[np.ix_(idx, idx)]
            mds_scatter(ax, D, labels, COLORS, RULE_NAMES, jitter=0.02 if metric == "topology" else 0.0)
            ax.set_title(f"N = {n}: {metric.upper() if metric == 'svcca' else 'topology'} MDS\n"
                         + sep_text(f2[n][metric]).replace(" (", "\n("), fontsize=6)
    for k, metric in enumerate(("svcca", "topology")):
        ax = fig.add_subplot(grid[2, k * (len(ns) // 2): (k + 1) * (len(ns) // 2) + (k * (len(ns) % 2))])
        silhouette_curve(ax, ns, [f2[n][metric] for n in ns], metric, "tab:purple" if k == 0 else "tab:olive")
        trend = f2[f"{metric}_trend"]["trained"]
        ax.set_title(f"{'SVCCA' if k == 0 else 'topology'} silhouette (BPTT vs GA) against N; "
                     f"slope {fmt(trend.value, 3)}, p = {fmt(trend.p_value, 3)}", fontsize=7)
        ax.set_xlabel("number of contexts N")
        ax.set_ylabel("silhouette by rule")
        ax.legend(fontsize=6)
    header(fig, context, f"Fig. 2: BPTT vs GA on N-CDI, σ = {FIG_NOISE:g} (silhouette: {context['convention']})")
    fig.tight_layout()
    save(fig, path)
