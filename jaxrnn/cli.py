"""Command line: ``jaxrnn run | plot | info | analyze | reproduce | report | bench``.

    jaxrnn run [CONFIG] [TABLE.FIELD=VALUE ...] [--out DIR] [--quiet] [--memory-budget 8GiB]
               [--dry-run] [--overwrite] [--compile-cache DIR | --no-compile-cache]
               [--coordinator HOST:PORT --num-processes N --process-id I | --distributed]
                                                train a population (default: packaged "default");
                                                overrides as in Hydra: task.noise_std=[0.1,1.0];
                                                re-running the same command resumes a killed or
                                                interrupted run
    jaxrnn plot DIR                             learning curves and final accuracies (PNG)
    jaxrnn info DIR                             a summary table per condition
    jaxrnn analyze DIR                          fixed points, SVCCA, topology into the run's store
    jaxrnn reproduce STUDY [--full] [--out DIR] a study's figures, claims table and report
                                                (jaxrnn.report.commands)
    jaxrnn report DIR                           an HTML page of a run or reproduction directory
    jaxrnn bench [NAME ...] [--summary-only]    run benchmark scripts in ./benchmarks, then write
                                                results/summary.md, results/scaling.png and the
                                                README's performance section

Exit codes: 0 done; 2 refused input — a bad config, override, flag or path, a missing or
unfinished run, an --out holding another config's run (``--overwrite`` replaces it) — with one
line on stderr naming what and why, checked before JAX is imported and before anything is
written; 3 an I/O error during the run (a full disk, a path that became unwritable): the
checkpoints of finished chunks are kept and no temporary file is left, so the same command
resumes once it is fixed; 130 interrupted (Ctrl-C): the same, the message says how to resume.
Anything else (a traceback) is a bug.

``jaxrnn run`` caches every compiled program on disk (JAX's persistent compilation cache, in
``$JAXRNN_CACHE_DIR`` or ``~/.cache/jaxrnn/xla``; ``--no-compile-cache`` turns it off), so a
second identical run compiles nothing.
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
    count = requested if requested is not None else (os.cpu_count() or 1)
    if count < 1:
        raise ValueError(f"--cpu-devices = {count} is not allowed: a positive number of CPU devices")
    import jax

    if count == 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the back-end is already initialised (e.g. jaxrnn.cli.main called in-process)
        return None
    return count


def default_cache_dir() -> Path:
    """``$JAXRNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxrnn/xla``, else ``~/.cache/jaxrnn/xla``."""
    if os.environ.get("JAXRNN_CACHE_DIR"):
        return Path(os.environ["JAXRNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxrnn" / "xla"


def use_compilation_cache(directory: str | Path | None) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``directory`` (None: leave it off).

    Every compiled program is cached, however quick to compile (``min_compile_time = 0``), so a
    second identical ``jaxrnn run`` in a new process compiles nothing: its groups' programs,
    and the small ones (keys, init), load from disk. Entries are keyed by the program, the
    JAX/XLA versions and the devices, so a stale entry is never used; the folder can be deleted
    at any time. Returns the folder used.
    """
    if directory is None:
        return None
    import jax

    directory = Path(directory).expanduser()
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory


def _split_config(items: list[str]) -> tuple[str, list[str]]:
    """``[CONFIG] [TABLE.FIELD=VALUE ...]`` → ``(config, overrides)``."""
    config = "default"
    if items and "=" not in items[0]:
        config, items = items[0], items[1:]
    for item in items:
        if "=" not in item:
            raise ValueError(f"override = {item!r} is not allowed: must be TABLE.FIELD=VALUE after the config "
                             "(e.g. task.noise_std=[0.1,1.0])")
    return config, items


def _run(args) -> int:
    # Everything that can be refused is checked before JAX is imported and before --out is written.
    from jaxrnn.population import checkpoint, config_text, parse

    try:
        config_arg, overrides = _split_config(args.config)
        config = parse.load_config(config_arg, check=False, overrides=overrides)
        if args.memory_budget is not None:
            config_text.parse_bytes(args.memory_budget)
        if args.max_time is not None:
            parse_duration(args.max_time)
        if args.cpu_devices is not None and args.cpu_devices < 1:
            raise ValueError(f"--cpu-devices = {args.cpu_devices} is not allowed: a positive number of CPU devices")
        out = Path(args.out) if args.out else Path("runs") / config.run.name
        state = "new" if args.dry_run else checkpoint.check_out(out, config.raw, overwrite=args.overwrite)
    except ValueError as error:
        return _fail("run", error)
    if not args.no_compile_cache:
        use_compilation_cache(args.compile_cache or default_cache_dir())
    if args.distributed or args.coordinator or args.num_processes:
        from jaxrnn import distributed  # before anything initialises the XLA back-end

        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    else:
        use_cpu_devices(args.cpu_devices)
    try:
        from jaxrnn import population
        from jaxrnn.plot import plot_learning_curves

        parse.check_config(config)
        if args.dry_run:
            print("  ".join(DRY_RUN_HEADER), flush=True)
            return _dry_run(population.dry_run(config, args.memory_budget, report=_print_dry_run_row))
        if not args.yes and state != "complete":
            _check_projection(config, args, state)
        if state == "stale" and population.sharding.is_writer():
            checkpoint.clear(out)
        if not args.quiet:
            groups = population.group_members(config)
            print(f"jaxrnn run: {config.run.name}: {len(config.members())} members in {len(groups)} compiled group(s) "
                  f"-> {out}" + (" (resuming)" if state == "resume" else ""), file=sys.stderr)
        dataset = population.run(config, out=out, quiet=args.quiet, memory_budget=args.memory_budget)
        if population.sharding.is_writer():
            figure = plot_learning_curves(dataset, out / "learning_curves.png")
            if not args.quiet:
                print(summary_table(dataset))
                print(f"results: {out / population.store.STORE_NAME}\nfigure:  {figure}")
    except ValueError as error:
        return _fail("run", error)
    except OSError as error:
        return _fail("run", _os_message(error), EXIT_IO)
    except KeyboardInterrupt:
        return _fail("run", "interrupted: the checkpoint of every finished chunk is kept in "
                     f"{str(out)!r}; run the same command again to resume", EXIT_INTERRUPTED)
    return 0


EXIT_INPUT, EXIT_IO, EXIT_INTERRUPTED = 2, 3, 130


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"30min"``, ``"2h"`` → seconds."""
    import re

    match = re.fullmatch(r"\s*([0-9.]+)\s*(s|sec|m|min|h|hr|d)?\s*", str(text))
    if not match:
        raise ValueError(f"--max-time = {text!r} is not allowed: must be a duration such as 90s, 30min or 2h")
    scale = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * scale


def _check_projection(config, args, state: str) -> None:
    """Refuse (unless ``--yes``) a run whose results will not fit in the host memory available now,
    or whose projected wall time (a dry run's, only with ``--max-time``) exceeds ``--max-time``."""
    from jaxrnn.population import planner, train
    from jaxrnn.population.runner import group_members

    groups = group_members(config)
    host = sum(2 * train.host_result_bytes(members, members[0].run) for members in groups)
    available = planner.available_memory()
    if host > 0.8 * available:
        raise ValueError(
            f"memory: the results of {len(config.members())} members need about {host / 2**30:.1f} GiB of host "
            f"memory (params snapshots and metrics), more than 80% of the {available / 2**30:.1f} GiB available: "
            "lower run.snapshots, the hidden size or the grid, or pass --yes to run anyway")
    if args.max_time is not None and state != "complete":
        limit = parse_duration(args.max_time)
        rows = train.dry_run(config, args.memory_budget)
        total = sum(r["projected_s"] for r in rows)
        if total > limit:
            raise ValueError(f"--max-time = {args.max_time!r}: the projected wall time is {total / 3600:.2f} h "
                             f"({total:.0f} s, `jaxrnn run ... --dry-run` shows it per group): shrink the run, or "
                             "pass --yes to run anyway")


def _fail(command: str, error, code: int = EXIT_INPUT) -> int:
    """Print ``jaxrnn COMMAND: message`` on one line to stderr and return the exit code."""
    message = " ".join(str(error).split())
    print(f"jaxrnn {command}: {message}", file=sys.stderr)
    return code


def _os_message(error: OSError, resume: bool = True) -> str:
    where = f" {error.filename!r}" if error.filename else ""
    what = error.strerror or str(error)
    if not resume:
        return f"cannot write{where}: {what}"
    return (f"cannot write{where}: {what}; the checkpoints of finished chunks are kept and nothing half-written "
            "is left: fix it and run the same command to resume")


DRY_RUN_HEADER = ("group", "members", "slices", "MiB/member", "peak MiB/device", "host MiB", "compile s",
                  "s/block", "projected s")


def _dry_run_row(r) -> tuple[str, ...]:
    return (r["group"], str(r["members"]), str(r["slices"]), f"{r['bytes_per_member'] / 2**20:.3g}",
            f"{r['peak_bytes_per_device'] / 2**20:.3g}", f"{r['host_bytes'] / 2**20:.3g}", f"{r['compile_s']:.1f}",
            f"{r['block_s']:.2f}", f"{r['projected_s']:.0f}")


def _print_dry_run_row(row) -> None:
    """One group's projection, printed as soon as it is measured."""
    print("  ".join(_dry_run_row(row)), flush=True)


def _dry_run(rows) -> int:
    total = sum(r["projected_s"] for r in rows)
    peak = max(r["peak_bytes_per_device"] for r in rows)
    host = max(r["host_bytes"] for r in rows)
    print(f"projected wall time {total:.0f} s ({total / 3600:.2f} h), projected peak memory {peak / 2**20:.3g} MiB "
          f"per device (budget {rows[0]['budget_bytes'] / 2**20:.0f} MiB) and {host / 2**20:.3g} MiB of results on "
          "the host; s/block: one validation block (eval_every updates and a validation) of the sampled members")
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


def _finished_run(command: str, directory: str):
    """The store of a finished run in ``directory``; raises ``ValueError`` (JAX-free) otherwise."""
    from jaxrnn.population import checkpoint
    from jaxrnn.population.checkpoint import STORE_NAME

    path = Path(directory)
    if not path.exists():
        raise ValueError(f"DIR = {directory!r} is not allowed: must be a run directory written by `jaxrnn run` "
                         "(it does not exist)")
    if path.is_dir() and not (path / STORE_NAME).exists() and path.suffix != ".zarr":
        if (path / checkpoint.MANIFEST).exists():
            done = checkpoint.progress(path)
            chunks = ", ".join(f"{part}: {n} chunks" for part, n in done.items()) or "no chunk finished"
            raise ValueError(f"DIR = {directory!r} holds an unfinished run ({chunks}): run the same `jaxrnn run` "
                             f"command with --out {directory} to resume it, then `jaxrnn {command}` it")
        raise ValueError(f"DIR = {directory!r} is not allowed: must be a run directory written by `jaxrnn run` "
                         f"(it has no {STORE_NAME})")
    from jaxrnn.population.store import load  # xarray: only once the directory is known to hold a store

    return load(path)


def _plot(args) -> int:
    try:
        dataset = _finished_run("plot", args.dir)
        from jaxrnn.plot import plot_final_accuracy, plot_learning_curves

        out = Path(args.dir)
        paths = [plot_learning_curves(dataset, out / "learning_curves.png")]
        if "val_accuracy" in dataset:
            paths.append(plot_final_accuracy(dataset, out / "final_accuracy.png"))
    except ValueError as error:
        return _fail("plot", error)
    except OSError as error:
        return _fail("plot", _os_message(error, resume=False), EXIT_IO)
    for path in paths:
        print(path)
    return 0


def _analyze(args) -> int:
    try:
        _finished_run("analyze", args.dir)
        from jaxrnn.analysis.pipeline import analyze_store

        dataset = analyze_store(args.dir, snapshot=args.snapshot, num_starts=args.num_starts, progress=not args.quiet)
    except ValueError as error:
        return _fail("analyze", error)
    except OSError as error:
        return _fail("analyze", _os_message(error, resume=False) + " (the store was not changed)", EXIT_IO)
    except KeyboardInterrupt:
        return _fail("analyze", "interrupted: the store was not changed", EXIT_INTERRUPTED)
    added = sorted(v for v in dataset.data_vars if v.startswith(("fp_", "svcca", "topology", "mds", "silhouette")))
    if not args.quiet:
        print(f"{args.dir}: added {', '.join(added)}")
    return 0


def _info(args) -> int:
    try:
        dataset = _finished_run("info", args.dir)
    except ValueError as error:
        return _fail("info", error)
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
    p.add_argument("config", nargs="*", metavar="CONFIG [TABLE.FIELD=VALUE ...]",
                   help="TOML file or packaged config (default: default), then overrides such as "
                        "task.noise_std=[0.1,1.0] grid.seeds=8")
    p.add_argument("--out", help="run directory (default: runs/<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--memory-budget", help="bytes per device for one compiled slice, e.g. 8GiB (default: from device)")
    p.add_argument("--dry-run", action="store_true",
                   help="compile each group, time a few updates, print projected wall time and memory")
    p.add_argument("--yes", action="store_true",
                   help="run even if the projected memory or wall time (--max-time) exceeds what is available")
    p.add_argument("--max-time", metavar="DURATION",
                   help="refuse (unless --yes) a run whose projected wall time exceeds this, e.g. 2h (runs a dry run)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run of another config (or stale results) in --out instead of refusing")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="XLA CPU devices the host is split into (default: one per core; 1: a single device)")
    p.add_argument("--compile-cache", metavar="DIR",
                   help="persistent compilation cache (default: $JAXRNN_CACHE_DIR or ~/.cache/jaxrnn/xla)")
    p.add_argument("--no-compile-cache", action="store_true", help="compile everything afresh, cache nothing")
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
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("reproduce", "report") or argv[0].startswith("-"):
        # `reproduce` and `report` (their module imports matplotlib and xarray: seconds, which a
        # refused `jaxrnn run` must not spend)
        from jaxrnn.report.commands import add_parsers

        add_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
