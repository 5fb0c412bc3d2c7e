"""Wall time, updates to criterion and peak memory of the McMahan et al. reproduction (CPU scale).

Runs :func:`jaxrnn.studies.mcmahan.reproduce` at ``--scale`` (default ``cpu``, the scale whose
time the README quotes) into a fresh ``--out`` and records, in
``benchmarks/results/mcmahan_reproduction-cpu.json``: the wall time of each stage (training,
analysis, statistics, figures) and in total, the process's peak RSS, the load average before
and after (the machine is shared: a timing is only comparable at the load it states), and per
rule the members that met the criterion and their updates to it (an update is an Adam step, a
GA generation, 10 Hebbian trials or one full-FORCE trial).

    python benchmarks/mcmahan_reproduction.py [--out /tmp/mcmahan-bench] [--scale cpu]
    python benchmarks/mcmahan_reproduction.py --out DIR --record DIR/timing.json   # a finished run

The target of issue #13: the CPU scale in at most 60 minutes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGET_MINUTES = 60.0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/mcmahan-bench"))
    parser.add_argument("--scale", default="cpu", choices=("test", "cpu"))
    parser.add_argument("--keep", action="store_true", help="resume an existing --out instead of starting fresh")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--record", type=Path, default=None, metavar="TIMING_JSON",
                        help="record a finished run in --out instead of running: its timing.json as written by "
                             "the run that trained it (a later resume rewrites timing.json with its own times)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.keep and args.record is None:
        shutil.rmtree(args.out)
    sys.path.insert(0, str(HERE))
    from bptt_population import _machine

    from jaxrnn.studies import mcmahan

    if args.record is not None:
        timing = json.loads(args.record.read_text())
        doc = json.loads((args.out / "claims.json").read_text())
        wall, load_before = timing["seconds"]["total_s"], timing.get("loadavg_at_start", [float("nan")] * 3)
        peak = timing["peak_rss_bytes"]
    else:
        load_before = list(os.getloadavg())
        start = time.time()
        doc = mcmahan.reproduce(args.out, scale=args.scale, quiet=True)
        wall = time.time() - start
        timing = json.loads((args.out / "timing.json").read_text())
        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    members = {k: v for k, v in timing["updates_to_criterion"].items()}
    table_rows = []
    import xarray as xr  # noqa: F401  (loaded by the study already)
    from jaxrnn import population

    ds = population.load(args.out / "population")
    rules = np.asarray(ds["rule.name"].values).astype(str)
    tasks = np.asarray(ds["task.name"].values).astype(str)
    converged = np.asarray(ds["converged_update"].values).astype(int)
    for rule in dict.fromkeys(rules.tolist()):
        for task in dict.fromkeys(tasks[rules == rule].tolist()):
            m = (rules == rule) & (tasks == task)
            met = converged[m][converged[m] >= 0]
            table_rows.append({"kind": "updates to criterion", "rule": rule, "task": task, "members": int(m.sum()),
                               "met": int(len(met)), "median_updates": float(np.median(met)) if len(met) else None,
                               "max_updates": int(met.max()) if len(met) else None})
    verdicts = {c["id"]: c["holds"] for c in doc["claims"]}
    result = {
        "benchmark": "mcmahan_reproduction", "command": (f"mcmahan.reproduce(out, scale={args.scale!r}), recorded by --record" if args.record is not None
                    else f"python benchmarks/mcmahan_reproduction.py --scale {args.scale}"),
        "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": _machine(),
        "loadavg_before": load_before,
        "loadavg_after": timing["loadavg_at_end"] if args.record is not None else list(os.getloadavg()),
        "rows": [{"kind": "reproduction", "scale": args.scale, "wall_s": round(wall, 1),
                  **{k: round(v, 1) for k, v in timing["seconds"].items()},
                  "peak_rss_bytes": peak,
                  "networks": timing["members"], "met_criterion": timing["met"],
                  "load_1min_before": round(load_before[0], 2)}] + table_rows,
        "updates_to_criterion": members, "claims": verdicts,
        "targets": {"cpu_minutes_max": TARGET_MINUTES, "measured_minutes": round(wall / 60, 1),
                    "met": wall / 60 <= TARGET_MINUTES},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"mcmahan_reproduction-{args.scale}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{wall / 60:.1f} min (load before {load_before[0]:.1f}), peak RSS "
          f"{result['rows'][0]['peak_rss_bytes'] / 2**30:.2f} GiB -> {path}")
    return result


if __name__ == "__main__":
    main()
