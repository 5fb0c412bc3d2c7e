"""Command line: ``jaxrnn run | plot | info | analyze | reproduce | report | bench``.

    jaxrnn run [CONFIG] [--out DIR] [--quiet] [--memory-budget 8GiB] [--dry-run]
               [--coordinator HOST:PORT --num-processes N --process-id I | --distributed]
                                                train a population (default: packaged "default");
                                                re-running the same command resumes a killed run
    jaxrnn plot DIR                             learning curves and final accuracies (PNG)
    jaxrnn info DIR                             a summary table per condition
    jaxrnn analyze DIR                          fixed points, SVCCA, topology into the run's store
    jaxrnn reproduce STUDY [--full] [--out DIR] a study's figures, claims table and report
                                                (jaxrnn.report.commands)
    jaxrnn report DIR                           an HTML page of a run or reproduction directory
    jaxrnn bench [NAME ...] [--summary-only]    run benchmark scripts in ./benchmarks, then write
                                                results/summary.md, results/scaling.png and the
                                                README's performance section
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def use_cpu_devices(requested: int | None) -> int | None:
    """Split the host CPU into ``requested`` XLA devices (default: one per core) before JAX starts.

    The runner shards a population over all devices and each device trains its own members
    (:func:`jaxrnn.population.mapping.population_map`), so one CPU device per core puts every
    core to work (population BPTT at P = 64 on the 2-core CPU: 13.7 → 25.8 network-updates/s,
    ``benchmarks/results/bptt_population-cpu.json``). Only the CPU platform's device count
    changes; on a GPU/TPU machine the accelerator stays the default device. Left alone when
    ``XLA_FLAGS`` already sets ``--xla_force_host_platform_device_count``, when ``requested``
    is 1, or when JAX's back-end is already running (then it cannot change). Returns the count
    set, or None.
    """
    import jax

    count = requested if requested is not None else (os.cpu_count() or 1)
    if count < 1:
        raise ValueError(f"--cpu-devices = {count} is not allowed: a positive number of CPU devices")
    if count == 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the back-end is already initialised (e.g. jaxrnn.cli.main called in-process)
        return None
    return count


def _run(args) -> int:
    if args.distributed or args.coordinator or args.num_processes:
        from jaxrnn import distributed  # before anything initialises the XLA back-end

        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    else:
        try:
            use_cpu_devices(args.cpu_devices)
        except ValueError as error:
            print(f"jaxrnn run: {error}", file=sys.stderr)
            return 2
    from jaxrnn import population
    from jaxrnn.plot import plot_learning_curves
    try:
        config = population.load_config(args.config)
        if args.memory_budget is not None:
            population.planner.parse_bytes(args.memory_budget)
        if args.dry_run:
            return _dry_run(population.dry_run(config, args.memory_budget))
        out = Path(args.out) if args.out else Path("runs") / config.run.name
        members = config.members()
        if not args.quiet:
            groups = population.group_members(config)
            print(f"jaxrnn run: {config.run.name}: {len(members)} members in {len(groups)} compiled group(s) -> {out}",
                  file=sys.stderr)
        dataset = population.run(config, out=out, quiet=args.quiet, memory_budget=args.memory_budget)
    except ValueError as error:
        print(f"jaxrnn run: {error}", file=sys.stderr)
        return 2
    if population.sharding.is_writer():
        figure = plot_learning_curves(dataset, out / "learning_curves.png")
        if not args.quiet:
            print(summary_table(dataset))
            print(f"results: {out / population.store.STORE_NAME}\nfigure:  {figure}")
    return 0


def _dry_run(rows) -> int:
    total = sum(r["projected_s"] for r in rows)
    peak = max(r["peak_bytes_per_device"] for r in rows)
    header = ("group", "members", "slices", "remat", "MiB/member", "peak MiB/device", "compile s", "s/chunk",
              "projected s")
    table = [header] + [
        (r["group"], str(r["members"]), str(r["slices"]), str(r["remat"]), f"{r['bytes_per_member'] / 2**20:.1f}",
         f"{r['peak_bytes_per_device'] / 2**20:.1f}", f"{r['compile_s']:.1f}", f"{r['chunk_s']:.2f}",
         f"{r['projected_s']:.0f}") for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    print(f"projected wall time {total:.0f} s ({total / 60:.1f} min), projected peak memory "
          f"{peak / 2**20:.0f} MiB per device (budget {rows[0]['budget_bytes'] / 2**20:.0f} MiB)")
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


def _analyze(args) -> int:
    from jaxrnn.analysis.pipeline import analyze_store

    try:
        dataset = analyze_store(args.dir, snapshot=args.snapshot, num_starts=args.num_starts)
    except ValueError as error:
        print(f"jaxrnn analyze: {error}", file=sys.stderr)
        return 2
    added = sorted(v for v in dataset.data_vars if v.startswith(("fp_", "svcca", "topology", "mds", "silhouette")))
    print(f"{args.dir}: added {', '.join(added)}")
    return 0


def _info(args) -> int:
    from jaxrnn import population

    dataset = population.load(args.dir)
    updates = f"{dataset.sizes['update']} updates"
    if "run.num_updates" in dataset.coords:  # a union of sub-grids: budgets may differ per member
        budgets = sorted({int(u) for u in dataset["run.num_updates"].values})
        updates = f"{budgets[0]}" + (f"-{budgets[-1]}" if len(budgets) > 1 else "") + " updates"
        updates += f" in {len(set(dataset['subgrid'].values.tolist()))} sub-grids"
    print(f"{dataset.attrs.get('run_name', '?')}: {dataset.sizes['member']} members, "
          f"{updates}, wall time {dataset.attrs.get('wall_time', float('nan')):.1f} s, "
          f"devices {dataset.attrs.get('devices')}")
    print(summary_table(dataset))
    return 0


def _bench(args) -> int:
    from jaxrnn.bench import summarize

    root = Path(args.dir)
    if args.summary_only:
        for path in summarize(root / "results", readme=args.readme):
            print(path)
        return 0
    scripts = sorted(p for p in root.glob("*.py") if not p.stem.startswith(("torch_", "_")))
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
    for path in summarize(root / "results", readme=args.readme):
        print(path)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxrnn", description="Train and dissect populations of RNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train a population from a TOML config or a packaged config name")
    p.add_argument("config", nargs="?", default="default", help="TOML file or packaged config (default: default)")
    p.add_argument("--out", help="run directory (default: runs/<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--memory-budget", help="bytes per device for one compiled slice, e.g. 8GiB (default: from device)")
    p.add_argument("--dry-run", action="store_true", help="compile and time one chunk per group, print projections")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="XLA CPU devices the host is split into (default: one per core; 1: a single device)")
    p.add_argument("--coordinator", help="multi-process: coordinator HOST:PORT (jax.distributed)")
    p.add_argument("--num-processes", type=int, help="multi-process: number of processes")
    p.add_argument("--process-id", type=int, help="multi-process: this process's id")
    p.add_argument("--distributed", action="store_true", help="multi-process: read the cluster from the environment (SLURM, ...)")
    p.set_defaults(func=_run)
    p = sub.add_parser("plot", help="figures from a run directory")
    p.add_argument("dir")
    p.set_defaults(func=_plot)
    p = sub.add_parser("analyze", help="fixed points, SVCCA, topology, MDS of a stored population (into its store)")
    p.add_argument("dir")
    p.add_argument("--snapshot", type=int, default=-1, help="params snapshot to analyse (default: last)")
    p.add_argument("--num-starts", type=int, default=100, help="fixed-point starts per probe input")
    p.set_defaults(func=_analyze)
    p = sub.add_parser("info", help="summary table of a run directory")
    p.add_argument("dir")
    p.set_defaults(func=_info)
    p = sub.add_parser("bench", help="run benchmark scripts")
    p.add_argument("names", nargs="*", help="benchmark script names (default: all)")
    p.add_argument("--dir", default="benchmarks", help="folder of benchmark scripts")
    p.add_argument("--summary-only", action="store_true", help="only rebuild the summary, plots and README section")
    p.add_argument("--readme", default="README.md", help="README whose performance section is regenerated")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed to each script after --")
    p.set_defaults(func=_bench)
    from jaxrnn.report.commands import add_parsers  # `reproduce` and `report`

    add_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
