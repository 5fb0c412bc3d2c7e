"""McMahan, Kleinman & Kao (NeurIPS 2021): learning rule shapes representations, not attractors.

Trains CTRNN populations with the four learning rules of the study (BPTT, GA, Miconi's
node-perturbation Hebbian rule, full-FORCE) on RDM and N-CDI at several input-noise levels,
runs :func:`jaxrnn.analysis.pipeline.analyze` (fixed points at the static probes, SVCCA,
attractor topology, MDS, silhouettes, pulse probes) and draws the paper's figures:

    fig1ab_svcca.png        SVCCA distance matrix (members sorted by rule) and its MDS (Fig. 1a–b)
    fig1d_attractors.png    fixed points at the probe inputs, one network per rule (Fig. 1d)
    fig1e_topology.png      topology-signature MDS and silhouette by rule (Fig. 1e)
    fig2_complexity.png     silhouettes (SVCCA vs topology) against the number of contexts (Fig. 2)
    fig3_noise.png          input noise and topology: MDS coloured by noise, #attractors (Fig. 3)
    fig4_integration.png    pulse retention and stable/transient fractions per rule (Fig. 4)
    fig5_noise_complexity.png  noise × complexity: fraction of stable integrators (Fig. 5)

Small by default (CPU, minutes): 2 seeds, 150-step trials, RDM/CDI/3-CDI, noise 0.1 and 1.0, a few
hundred updates per rule — most networks do not reach the study's 90 % criterion, and every
figure's title says "small scale" and reports the mean final validation accuracy. ``--full``
runs the study's scale (50 seeds, 750 steps, RDM … 6-CDI, noise 0.1/0.5/1.0, 20,000 BPTT
updates, 2,000 GA generations, 50,000 Hebbian trials, full-FORCE to criterion): an accelerator job.

    python examples/learning_rules.py [--out runs/learning_rules] [--full] [--seeds 2]

One config per rule (the rules take different ``[rule]`` fields), trained with
``jaxrnn.population.run`` and concatenated along ``member`` with
:func:`jaxrnn.analysis.pipeline.concat_runs`.
"""

from __future__ import annotations

import os

# jaxlib 0.10.2 CPU can deadlock in batched linear algebra with this scheduler (see benchmarks).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_concurrency_optimized_scheduler=false").strip()

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from jaxrnn import population  # noqa: E402
from jaxrnn.analysis.pipeline import analyze, concat_runs  # noqa: E402

RULES = ("bptt", "ga", "hebbian", "full_force")
COLORS = {"bptt": "tab:red", "ga": "tab:green", "hebbian": "tab:orange", "full_force": "tab:blue"}
TASK_CONTEXTS = {"rdm": 1, "cdi": 2, "ncdi-3": 3, "ncdi-4": 4, "ncdi-5": 5, "ncdi-6": 6}


def rule_configs(full: bool, seeds: int, scale: float = 1.0) -> dict[str, dict]:
    """One config dict per rule (SPECS §3.1–3.6 at ``full``; CPU-sized otherwise)."""
    steps = 750 if full else 150
    tasks = list(TASK_CONTEXTS) if full else ["rdm", "cdi", "ncdi-3"]
    noise = [0.1, 0.5, 1.0] if full else [0.1, 1.0]
    val = 2000 if full else 200
    task = {"name": tasks, "noise_std": noise, "num_steps": steps}
    run = {"eval_every": 10 if full else 25, "stop_threshold": 0.9, "stop_window": 10 if full else 3, "snapshots": 2,
           "snapshot_spacing": "linear"}
    mcmahan = {"cell": "ctrnn", "hidden": 50, "alpha": 0.1, "activation": "shifted_tanh", "output": "state"}
    tanh_rate = {"cell": "ctrnn", "hidden": 50, "alpha": 0.1, "activation": "tanh", "output": "rate"}
    budget = {"bptt": 20000, "ga": 2000, "hebbian": 5000, "full_force": 5000} if full else \
             {"bptt": 300, "ga": 150, "hebbian": 300, "full_force": 300}
    budget = {k: max(int(v * scale) // run["eval_every"], 1) * run["eval_every"] for k, v in budget.items()}
    chunk = 500 if full else 75
    rules = {
        "bptt": ({"name": "bptt", "learning_rate": 5e-4 if full else 5e-3, "batch": 500 if full else 32,
                  "num_validation_trials": val}, mcmahan),
        "ga": ({"name": "ga", "population_size": 20, "num_parents": 5, "mutation_std": 0.005,
                "batch": 500 if full else 32, "num_validation_trials": val}, mcmahan),
        "hebbian": ({"name": "hebbian", "trials_per_update": 10, "eval_window": 200 if full else 50,
                     "num_validation_trials": val},
                    {**tanh_rate, "weight_init": "uniform", "input_scale": 1.0, "gain": 1.5}),
        "full_force": ({"name": "full_force", "error_trigger": 200 if full else 50, "ff_alpha": 10000.0,
                        "num_validation_trials": val}, tanh_rate),
    }
    return {name: {"run": {**run, "name": f"mcmahan-{name}", "num_updates": budget[name],
                           "chunk_updates": min(chunk, budget[name])},
                   "task": task, "model": model, "rule": rule, "grid": {"seeds": 50 if full else seeds}}
            for name, (rule, model) in rules.items()}


def train(out: Path, full: bool, seeds: int, quiet: bool, scale: float = 1.0) -> xr.Dataset:
    parts = []
    for name, raw in rule_configs(full, seeds, scale).items():
        print(f"training {name} ...", flush=True)
        parts.append(population.run(population.from_dict(raw, name=f"mcmahan-{name}"), out=out / name, quiet=quiet))
    return concat_runs(parts)


def _title(ax, text, small, ds):
    if small:
        acc = np.nan
        if "val_accuracy" in ds:  # each member's last validation (runs of different lengths are NaN-padded)
            values = ds.val_accuracy.values
            last = [row[np.isfinite(row)][-1] for row in values if np.isfinite(row).any()]
            acc = float(np.mean(last)) if last else np.nan
        text += f"\n[small scale: not trained to criterion, mean final val. acc. {acc:.2f}]"
    ax.set_title(text, fontsize=8)


def _rules(ds):
    return np.asarray(ds["rule.name"].values).astype(str)


def fig1ab(ds, res, path, small, task="cdi"):
    idx = np.where(np.asarray(ds["task.name"].values).astype(str) == task)[0]
    rules = _rules(ds)[idx]
    order = idx[np.argsort(rules, kind="stable")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    im = a.imshow(res.svcca_distance.values[np.ix_(order, order)], cmap="viridis")
    fig.colorbar(im, ax=a)
    _title(a, f"SVCCA distance, {task} (sorted by rule)", small, ds)
    Y = res.svcca_mds.values[idx]
    for rule in RULES:
        m = rules == rule
        b.scatter(Y[m, 0], Y[m, 1], c=COLORS[rule], label=rule, s=18)
    t = list(res.analysis_task.values).index(task)
    _title(b, f"MDS of SVCCA distances, silhouette by rule {float(res.svcca_silhouette[t]):.2f}", small, ds)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig1d(ds, res, path, small, task="rdm"):
    fig, axes = plt.subplots(1, len(RULES), figsize=(4 * len(RULES), 3.8))
    tasks = np.asarray(ds["task.name"].values).astype(str)
    for ax, rule in zip(axes, RULES):
        members = np.where((_rules(ds) == rule) & (tasks == task))[0]
        if not len(members):
            ax.set_axis_off()
            continue
        m = members[0]
        valid = res.fp_valid.values[m]
        x = res.fp_x.values[m][valid]
        x = x[:, np.all(np.isfinite(x), axis=0)]
        value = np.broadcast_to(res.probe_value.values[m][:, None], valid.shape)[valid]
        stable = res.fp_stable.values[m][valid]
        if len(x) > 1:
            centred = x - x.mean(0)
            _, _, Vt = np.linalg.svd(centred, full_matrices=False)
            pcs = centred @ Vt[:2].T if Vt.shape[0] > 1 else np.c_[centred @ Vt[0], np.zeros(len(x))]
            sc = ax.scatter(pcs[stable, 0], pcs[stable, 1], c=value[stable], cmap="coolwarm", s=25, label="stable")
            ax.scatter(pcs[~stable, 0], pcs[~stable, 1], facecolors="none", edgecolors="k", s=25, label="unstable")
            if stable.any():  # the colour scale means nothing without stable points
                fig.colorbar(sc, ax=ax, label="probe input")
            ax.legend(fontsize=6)
        _title(ax, f"{rule}: fixed points at the probe inputs ({task}, PCs)", small, ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig1e(ds, res, path, small, task="cdi"):
    idx = np.where(np.asarray(ds["task.name"].values).astype(str) == task)[0]
    t = list(res.analysis_task.values).index(task)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, name, label in ((axes[0], "topology", "McMahan signature"), (axes[1], "index_profile", "index profile")):
        Y = res[f"{name}_mds"].values[idx]
        rules = _rules(ds)[idx]
        for rule in RULES:
            m = rules == rule
            ax.scatter(Y[m, 0], Y[m, 1], c=COLORS[rule], label=rule, s=18)
        _title(ax, f"topology MDS ({label}), {task}, silhouette {float(res[f'{name}_silhouette'][t]):.2f}", small, ds)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig2(ds, res, path, small):
    tasks = [t for t in TASK_CONTEXTS if t in list(res.analysis_task.values)]
    n = [TASK_CONTEXTS[t] for t in tasks]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, style in (("svcca", "o-"), ("topology", "s--"), ("index_profile", "^:")):
        values = [float(res[f"{name}_silhouette"][list(res.analysis_task.values).index(t)]) for t in tasks]
        ax.plot(n, values, style, label=name)
    ax.set_xlabel("number of contexts (1 = RDM)")
    ax.set_ylabel("silhouette by learning rule")
    ax.legend(fontsize=7)
    _title(ax, "task complexity (N-CDI sweep): rule separability", small, ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig3(ds, res, path, small, task="cdi"):
    idx = np.where(np.asarray(ds["task.name"].values).astype(str) == task)[0]
    noise = np.asarray(ds["task.noise_std"].values)[idx]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    Y = res.topology_mds.values[idx]
    sc = a.scatter(Y[:, 0], Y[:, 1], c=noise, cmap="plasma", s=20)
    fig.colorbar(sc, ax=a, label="input noise σ")
    _title(a, f"topology MDS coloured by training noise ({task})", small, ds)
    attractors = (res.fp_valid & res.fp_stable).sum("fp").values[:, 0]  # stable FPs at zero input
    levels = np.unique(np.asarray(ds["task.noise_std"].values))
    for rule in RULES:
        means = [np.mean(attractors[(_rules(ds) == rule) & (np.asarray(ds["task.noise_std"].values) == s)]) for s in levels]
        b.plot(levels, means, "o-", c=COLORS[rule], label=rule)
    b.set_xlabel("input noise σ")
    b.set_ylabel("# attractors at zero input")
    b.legend(fontsize=7)
    _title(b, "input noise and attractor count (all tasks)", small, ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig4(ds, res, path, small):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    rules = _rules(ds)
    for rule in RULES:
        r = res.integration_retention.values[rules == rule]
        a.hist(np.clip(r[np.isfinite(r)], -0.5, 1.5), bins=20, alpha=0.5, color=COLORS[rule], label=rule)
    a.axvline(0.5, c="k", ls="--")
    a.set_xlabel("retention ρ = e(T) / e(pulse end)")
    a.legend(fontsize=7)
    _title(a, "pulse probe: evidence kept after the stimulus", small, ds)
    labels = res.integration_class.values
    bottom = np.zeros(len(RULES))
    for code, name, color in ((1, "stable", "tab:green"), (0, "transient", "tab:gray"), (-1, "unresponsive", "w")):
        frac = np.array([np.mean(labels[rules == r] == code) if np.any(rules == r) else 0 for r in RULES])
        b.bar(RULES, frac, bottom=bottom, color=color, edgecolor="k", label=name)
        bottom += frac
    b.legend(fontsize=7)
    _title(b, "transient vs stable integration by rule", small, ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig5(ds, res, path, small):
    tasks = [t for t in TASK_CONTEXTS if t in list(res.analysis_task.values)]
    levels = np.unique(np.asarray(ds["task.noise_std"].values))
    names = np.asarray(ds["task.name"].values).astype(str)
    noise = np.asarray(ds["task.noise_std"].values)
    grid = np.array([[np.mean(res.integration_class.values[(names == t) & (noise == s)] == 1) for t in tasks]
                     for s in levels])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    im = ax.imshow(grid, cmap="Greens", vmin=0, vmax=1, origin="lower")
    fig.colorbar(im, ax=ax, label="fraction stable integrators")
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_yticks(range(len(levels)), [f"{s:g}" for s in levels])
    ax.set_xlabel("task")
    ax.set_ylabel("input noise σ")
    _title(ax, "noise × complexity", small, ds)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learning_rules"))
    parser.add_argument("--full", action="store_true", help="the study's scale (accelerator)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per grid point (small scale)")
    parser.add_argument("--starts", type=int, default=None, help="fixed-point starts per probe")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every rule's number of updates")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ds = train(args.out, args.full, args.seeds, args.quiet, args.budget_scale)
    print("analysing ...", flush=True)
    starts = args.starts or (100 if args.full else 24)
    res = analyze(ds, num_starts=starts, num_steps=750 if args.full else 150, max_iters=100 if args.full else 50,
                  time_stride=1 if args.full else 2)
    res.to_netcdf(args.out / "analysis.nc")
    small = not args.full
    figures = {"fig1ab_svcca.png": fig1ab, "fig1d_attractors.png": fig1d, "fig1e_topology.png": fig1e,
               "fig2_complexity.png": fig2, "fig3_noise.png": fig3, "fig4_integration.png": fig4,
               "fig5_noise_complexity.png": fig5}
    for name, draw in figures.items():
        draw(ds, res, args.out / name, small)
        print("wrote", args.out / name)


if __name__ == "__main__":
    main()
