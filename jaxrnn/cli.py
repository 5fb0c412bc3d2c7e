"""Command line: ``jaxrnn run | plot | info | bench``.

    jaxrnn run [CONFIG] [--out DIR] [--quiet]   train a population (default: packaged "default")
    jaxrnn plot DIR                             learning curves and final accuracies (PNG)
    jaxrnn info DIR                             a summary table per condition
    jaxrnn bench [NAME ...]                     run benchmark scripts in ./benchmarks
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np


def _run(args) -> int:
    from jaxrnn import population
    from jaxrnn.plot import plot_learning_curves

    try:
        config = population.load_config(args.config)
    except ValueError as error:
        print(f"jaxrnn run: {error}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / config.run.name
    members = config.members()
    if not args.quiet:
        groups = population.group_members(config)
        print(f"jaxrnn run: {config.run.name}: {len(members)} members in {len(groups)} compiled group(s) -> {out}",
              file=sys.stderr)
    dataset = population.run(config, out=out, quiet=args.quiet)
    figure = plot_learning_curves(dataset, out / "learning_curves.png")
    if not args.quiet:
        print(summary_table(dataset))
        print(f"results: {out / population.store.STORE_NAME}\nfigure:  {figure}")
    return 0


def summary_table(dataset) -> str:
    """One row per condition: members, converged, diverged, median updates to criterion, final accuracy."""
    from jaxrnn.plot import condition_labels

    labels = np.asarray(condition_labels(dataset))
    converged = dataset["converged_update"].values
    diverged = dataset["diverged"].values
    acc = dataset["val_accuracy"].values if "val_accuracy" in dataset else None
    rows = [("condition", "members", "converged", "diverged", "median updates", "final val acc")]
    for condition in dict.fromkeys(labels):
        idx = labels == condition
        hits = converged[idx][converged[idx] >= 0]
        final = "-"
        if acc is not None:
            last = [r[np.isfinite(r)][-1] for r in acc[idx] if np.isfinite(r).any()]
            final = f"{np.mean(last):.3f}" if last else "-"
        rows.append((condition, str(idx.sum()), str(len(hits)), str(int(diverged[idx].sum())),
                     f"{np.median(hits):.0f}" if len(hits) else "-", final))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plot(args) -> int:
    from jaxrnn import population
    from jaxrnn.plot import plot_final_accuracy, plot_learning_curves

    dataset = population.load(args.dir)
    out = Path(args.dir)
    paths = [plot_learning_curves(dataset, out / "learning_curves.png")]
    if "val_accuracy" in dataset:
        paths.append(plot_final_accuracy(dataset, out / "final_accuracy.png"))
    for path in paths:
        print(path)
    return 0


def _info(args) -> int:
    from jaxrnn import population

    dataset = population.load(args.dir)
    print(f"{dataset.attrs.get('run_name', '?')}: {dataset.sizes['member']} members, "
          f"{dataset.sizes['update']} updates, wall time {dataset.attrs.get('wall_time', float('nan')):.1f} s, "
          f"devices {dataset.attrs.get('devices')}")
    print(summary_table(dataset))
    return 0


def _bench(args) -> int:
    root = Path(args.dir)
    scripts = sorted(root.glob("*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem in args.names]
        missing = set(args.names) - {s.stem for s in scripts}
        if missing:
            print(f"jaxrnn bench: no benchmark named {sorted(missing)} in {root}", file=sys.stderr)
            return 2
    if not scripts:
        print(f"jaxrnn bench: no benchmark scripts in {root}", file=sys.stderr)
        return 2
    status = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        status |= subprocess.call([sys.executable, str(script), *args.extra])
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrnn", description="Train and dissect populations of RNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train a population from a TOML config or a packaged config name")
    p.add_argument("config", nargs="?", default="default", help="TOML file or packaged config (default: default)")
    p.add_argument("--out", help="run directory (default: runs/<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=_run)
    p = sub.add_parser("plot", help="figures from a run directory")
    p.add_argument("dir")
    p.set_defaults(func=_plot)
    p = sub.add_parser("info", help="summary table of a run directory")
    p.add_argument("dir")
    p.set_defaults(func=_info)
    p = sub.add_parser("bench", help="run benchmark scripts")
    p.add_argument("names", nargs="*", help="benchmark script names (default: all)")
    p.add_argument("--dir", default="benchmarks", help="folder of benchmark scripts")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed to each script after --")
    p.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
