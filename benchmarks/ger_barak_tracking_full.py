"""Ger & Barak's 2-D tracking task at the paper's scale: does the closed loop acquire all four frequencies?

The study's default (cpu) scale trains the tracking network for 2,000 updates at batch 50 and
acquires only the lower frequencies; the paper (Fig. 6) needs ≈ 230 / 1,200 / 2,600 / 4,500
updates for its four. This script runs exactly the ``--full`` scale's two tracking populations of
:mod:`jaxrnn.studies.ger_barak` — the closed-loop network (5,000 updates at batch 100) and its
open-loop student — into ``OUT/runs/tracking`` and ``OUT/runs/tracking_open``, the folders
``jaxrnn reproduce ger-barak --full --out OUT`` uses, so a later full reproduction resumes them
instead of training them again. Then it draws the study's Fig. 6 from them and writes the
acquisition updates (first snapshot whose single-frequency probe error is below half the error of
doing nothing, :func:`jaxrnn.studies.ger_barak_analysis.acquisition_updates`) and the closed- vs
open-loop test costs to ``benchmarks/results/ger_barak_tracking-full.json`` (Fig. 6 beside it, ``.png``).

    python benchmarks/ger_barak_tracking_full.py [--out DIR] [--scale full]

Resumable: the same command continues killed runs. ``--scale test`` runs the same code in a few
updates (numbers meaningless) to check the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FIGURE = "benchmarks/results/ger_barak_tracking-full.png"


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None) -> dict:
    from jaxrnn.studies import ger_barak as gb
    from jaxrnn.studies import ger_barak_analysis as an
    from jaxrnn.studies import ger_barak_tracking as gt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/jaxrnn-ger-barak-full"))
    p.add_argument("--scale", default="full", choices=list(gb.SCALES))
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    s, runs = gb.SCALES[args.scale], args.out / "runs"
    load0, wall0, cpu0 = os.getloadavg()[0], time.time(), _cpu()
    stores = gb.train_tracking(s, runs, args.quiet)
    res = {key: gb.tracking_analysis(ds) for key, ds in stores.items()}
    gt.fig6(res, args.out, args.scale, args.quiet)
    probes = [f"{axis} {f:g} Hz" for axis, f in an.probe_frequencies()]
    doc = {
        "benchmark": "ger_barak_tracking_full",
        "command": f"python benchmarks/ger_barak_tracking_full.py --out {args.out} --scale {args.scale}",
        "scale": args.scale, "tracking_updates": s["tracking_updates"], "tracking_batch": s["tracking_batch"],
        "acquisition_level": gt.LEVEL, "paper_acquisition_updates": [230, 1200, 2600, 4500],
        "acquired_closed_loop": dict(zip(probes, res["tracking"]["acquired"].tolist())),
        "acquired_open_loop": dict(zip(probes, res["tracking_open"]["acquired"].tolist())),
        "final_probe_error_closed_loop": dict(zip(probes, np.round(res["tracking"]["errors"][-1], 4).tolist())),
        "final_probe_error_open_loop": dict(zip(probes, np.round(res["tracking_open"]["errors"][-1], 4).tolist())),
        "final_test_cost": {k: float(np.asarray(res[k]["test_cost"])[np.isfinite(res[k]["test_cost"])][-1])
                            for k in res},
        "run_wall_time_s": {k: float(ds.attrs.get("wall_time", float("nan"))) for k, ds in stores.items()},
        "wall_s_this_process": round(time.time() - wall0, 1), "cpu_s_this_process": round(_cpu() - cpu0, 1),
        "load_average_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "figure": str(args.out / "fig6_tracking.png") if args.scale != "full" else FIGURE,
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.scale == "full":  # the result and its figure side by side in benchmarks/results/
        (HERE / "results" / "ger_barak_tracking-full.json").write_text(json.dumps(doc, indent=1) + "\n")
        shutil.copyfile(args.out / "fig6_tracking.png", HERE.parent / FIGURE)
    print(json.dumps(doc, indent=1))
    return doc


if __name__ == "__main__":
    main()
