"""Figures of the McMahan et al. (2021) reproduction: input noise and integration (Figs. 3–5).

Same conventions as :mod:`jaxrnn.studies.mcmahan_figures`: counts on every panel, only
members that met the criterion, silhouettes with permutation p, null mean and untrained value.
Noise is labelled in study units (σ of the 750-step task; the CPU scale trains at σ·√(T/750)).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from jaxrnn.analysis.probes import STABLE, TRANSIENT, UNRESPONSIVE
from jaxrnn.studies.mcmahan_analysis import RULE_NAMES, RULES, probe_design
from jaxrnn.studies.mcmahan_figures import (COLORS, NOISE_COLORS, TASK_NAMES, draw_attractors, fmt, header,
                                            mds_scatter, save, sep_text, silhouette_curve)


def _noise_names(levels) -> dict:
    return {float(v): f"σ = {v:g}" for v in levels}


def fig3_noise(path: Path, q: dict, examples: dict, context: dict) -> None:
    """Rows RDM, CDI: example BPTT attractors at small inputs per noise level; zero-input attractors
    against noise per rule; topology silhouette by rule against noise."""
    fig, axes = plt.subplots(2, 5, figsize=(17, 7.2), squeeze=False)
    sel = q["sel"]
    for row, task in enumerate(("rdm", "cdi")):
        f3 = q["fig3"][task]
        levels = f3["levels"]
        for col in range(3):
            ax = axes[row, col]
            ex = examples.get((task, levels[col])) if col < len(levels) else None
            if ex is None:
                ax.text(0.5, 0.5, "no BPTT network", ha="center", transform=ax.transAxes, fontsize=7)
                ax.set_axis_off()
                continue
            vmax = float(np.max(np.abs(ex["value"])))
            draw_attractors(ax, ex, vmax=vmax)
            zero = int(np.sum(ex["stable"][ex["value"] == 0])) / max(1, len(np.unique(ex["context"])))
            ax.set_title(f"{TASK_NAMES[task]}, BPTT, σ = {levels[col]:g} (member {ex['member']})\n"
                         f"|u| ≤ {vmax:g}; stable FPs at u = 0: {zero:g}/context", fontsize=6.5)
        ax = axes[row, 3]
        idx = f3["idx"]
        counts = q["attractors"]["trained"][idx]
        for r, rule in enumerate(RULES):
            m = sel["rule"][idx] == rule
            if not m.any():
                continue
            x = sel["noise"][idx][m]
            ax.scatter(x * (1 + 0.04 * (r - 1.5)), counts[m], c=COLORS[rule], s=10, alpha=0.5)
            means = [np.mean(counts[m][x == v]) if np.any(x == v) else np.nan for v in levels]
            ax.plot(np.asarray(levels) * (1 + 0.04 * (r - 1.5)), means, "-", c=COLORS[rule], lw=1.2,
                    label=f"{RULE_NAMES[rule]} ({m.sum()})")  # offset like the points: equal means stay visible
        untrained = q["attractors"]["untrained"][idx]
        ax.plot(levels, [np.mean(untrained[sel["noise"][idx] == v]) for v in levels], "k--", lw=0.8, label="untrained")
        ax.set_xticks(levels, [f"{v:g}" for v in levels])
        ax.set_xlabel("study noise σ")
        ax.set_ylabel("stable fixed points at u = 0")
        ax.legend(fontsize=6)
        ax.set_title(f"{TASK_NAMES[task]}: attractors at zero input\n"
                     + sep_text(f3["attractor_rho"], "Spearman ρ").replace(" (", "\n("), fontsize=6.5)
        ax = axes[row, 4]
        silhouette_curve(ax, levels, [f3["by_noise"][v] for v in levels], "topology", "tab:olive")
        ns = [f3["by_noise"][v]["trained"].n for v in levels]
        trend = f3["topology_trend"]["trained"]
        ax.set_xticks(levels, [f"{v:g}\n(n={n})" for v, n in zip(levels, ns)])
        ax.set_xlabel("study noise σ")
        ax.set_ylabel("topology silhouette by rule")
        ax.legend(fontsize=6)
        ax.set_title(f"{TASK_NAMES[task]}: rule clustering of attractor topology\nslope {fmt(trend.value, 3)}, "
                     f"p = {fmt(trend.p_value, 3)} (one-sided: falls with noise)", fontsize=7)
    header(fig, context, "Fig. 3: input noise and attractors (filled: stable, open: unstable; colour: input u)")
    fig.tight_layout()
    save(fig, path)


def fig4_integration(path: Path, q: dict, traces: dict, num_steps: int, context: dict) -> None:
    """Rows RDM, CDI: example transient / stable pulse responses; class fractions by noise; by rule."""
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.2), squeeze=False)
    sel = q["sel"]
    pulse, _ = probe_design(num_steps)
    for row, task in enumerate(("rdm", "cdi")):
        f4 = q["fig4"][task]
        idx, levels = f4["idx"], f4["levels"]
        classes = q["integration_class"]["trained"][idx]
        noise = sel["noise"][idx]
        ax = axes[row, 0]
        for kind, style in (("transient", "-"), ("stable", "--")):
            item = traces.get((task, kind))
            if item is None:
                continue
            member, evidence = item  # member indexes the stored population; sel the analysed members
            level = sel["noise"][int(np.flatnonzero(np.asarray(q["selected"]) == member)[0])]
            for c, trace in enumerate(evidence):
                ax.plot(trace, style, c=plt.get_cmap("viridis")(c / max(1, len(evidence) - 1)), lw=0.9,
                        label=f"{kind} (member {member}, σ = {level:g})" if c == 0 else None)
        ax.axvline(pulse, c="k", lw=0.6)
        ax.text(pulse, ax.get_ylim()[1], " inputs off", fontsize=6, va="top")
        for k in range(1, 5):
            ax.axvline(pulse + k * num_steps, c="0.8", lw=0.5, ls=":")
        ax.set_xlabel(f"step (dotted: one training trial, {num_steps} steps)")
        ax.set_ylabel("evidence e(t) = ½(y₊ − y₋)")
        ax.legend(fontsize=6)
        ax.set_title(f"{TASK_NAMES[task]}: pulse responses (colour: coherence × context)", fontsize=7)
        ax = axes[row, 1]
        bottom = np.zeros(len(levels))
        for code, name, color in ((STABLE, "stable", "tab:green"), (TRANSIENT, "transient", "0.6"),
                                  (UNRESPONSIVE, "unresponsive", "w")):
            frac = np.array([np.mean(classes[noise == v] == code) if np.any(noise == v) else 0 for v in levels])
            ax.bar(range(len(levels)), frac, bottom=bottom, color=color, edgecolor="k", label=name)
            bottom += frac
        ax.set_xticks(range(len(levels)), [f"σ = {v:g}\n(n={np.sum(noise == v)})" for v in levels])
        ax.set_ylabel("fraction of networks (all rules)")
        ax.legend(fontsize=6)
        ax.set_title(f"{TASK_NAMES[task]}: integration strategy by noise\n"
                     + sep_text(f4["stable_rho"], "ρ(noise, stable)"), fontsize=7)
        ax = axes[row, 2]
        for r, rule in enumerate(RULES):  # rules side by side at each level (categorical x), so none hides another
            m = sel["rule"][idx] == rule
            if m.any():
                ax.plot(np.arange(len(levels)) + (r - 1.5) * 0.08,
                        [np.mean(classes[m & (noise == v)] == STABLE) if np.any(m & (noise == v)) else np.nan
                         for v in levels], "o-", c=COLORS[rule], label=f"{RULE_NAMES[rule]} ({m.sum()})")
        ax.set_xticks(np.arange(len(levels)), [f"{v:g}" for v in levels])
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("study noise σ")
        ax.set_ylabel("fraction stable integrators")
        ax.legend(fontsize=6)
        ax.set_title(f"{TASK_NAMES[task]}: stable integrators by rule", fontsize=7)
    link = q["fig4"]["attractor_link"]
    header(fig, context, "Fig. 4: transient vs stable integration (pulse probe: stable if ≥ ½ of the evidence "
                         f"survives the delay); {sep_text(link, 'ρ(zero-input attractors, stable)')}")
    fig.tight_layout()
    save(fig, path)


def fig5_noise_complexity(path: Path, q: dict, trained, context: dict) -> None:
    """BPTT: MDS coloured by noise per task (SVCCA, topology) and silhouettes by noise against N."""
    f5 = q["fig5"]
    ns = f5["n"]
    fig = plt.figure(figsize=(2.8 * len(ns), 9.5))
    grid = fig.add_gridspec(3, len(ns))
    for col, n in enumerate(ns):
        idx = f5[n]["idx"]
        labels = q["sel"]["noise"][idx].astype(float)
        for row, metric in enumerate(("svcca", "topology")):
            ax = fig.add_subplot(grid[row, col])
            D = np.asarray(trained[f"{metric}_distance"].values)[np.ix_(idx, idx)]
            mds_scatter(ax, D, labels, NOISE_COLORS, _noise_names(labels), jitter=0.02 if metric == "topology" else 0.0)
            task = "RDM" if n == 1 else "CDI" if n == 2 else f"{n}-CDI"
            ax.set_title(f"{task}: {'SVCCA' if metric == 'svcca' else 'topology'} MDS\n"
                         + sep_text(f5[n][metric]).replace(" (", "\n("), fontsize=6)
    half = len(ns) // 2
    for k, metric in enumerate(("svcca", "topology")):
        ax = fig.add_subplot(grid[2, k * half: (k + 1) * half])
        silhouette_curve(ax, ns, [f5[n][metric] for n in ns], metric, "tab:purple" if k == 0 else "tab:olive")
        trend = f5[f"{metric}_trend"]["trained"]
        ax.set_title(f"{'SVCCA' if k == 0 else 'topology'} silhouette by noise level against N (1 = RDM); "
                     f"slope {fmt(trend.value, 3)}, p = {fmt(trend.p_value, 3)}", fontsize=7)
        ax.set_xlabel("number of contexts N")
        ax.set_ylabel("silhouette by noise")
        ax.legend(fontsize=6)
    header(fig, context, f"Fig. 5: noise × complexity, BPTT (silhouette: {context['convention']})")
    fig.tight_layout()
    save(fig, path)
