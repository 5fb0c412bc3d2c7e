"""The first run as a new user meets it: the Quick-start `jaxrnn run`, cold and with a warm cache.

Measures, each in a fresh process exactly as a user types it:

- ``cold``: ``jaxrnn run --out DIR`` (the packaged ``default`` config) with an empty persistent
  compilation cache (``JAXRNN_CACHE_DIR`` set to a new folder);
- ``warm``: the same command into a new ``--out`` with the cache the cold run filled
  (target: at least 3× faster than cold);
- ``reject``: ``jaxrnn run bad.toml`` for a config with a type error (``hidden = "eight"``),
  median of 5 (target: under 2 s).

Writes ``benchmarks/results/quickstart-cpu.json`` with the load average before and after each
measurement: on a shared machine the numbers move with the load, so re-measure at quiet load::

    python benchmarks/quickstart.py            # or: jaxrnn bench quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "quickstart-cpu.json"
BAD = '[task]\nname = "rdm"\n[model]\nhidden = "eight"\n'


def _timed(args: list[str], env: dict) -> tuple[float, int, str, tuple[float, float]]:
    before = os.getloadavg()[0]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "jaxrnn.cli", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, result.returncode, result.stderr[-2000:], (before, os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", help="config of the timed run (default: the Quick start's)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rejections (median reported)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        env = {**os.environ, "JAXRNN_CACHE_DIR": str(scratch / "xla-cache")}
        for kind in ("cold", "warm"):
            seconds, code, err, load = _timed(["run", args.config, "--out", str(scratch / kind), "--quiet"], env)
            if code != 0:
                raise SystemExit(f"jaxrnn run failed ({code}): {err}")
            rows.append({"kind": kind, "command": f"jaxrnn run {args.config} --out DIR --quiet", "wall_s": seconds,
                         "loadavg_before": load[0], "loadavg_after": load[1]})
            print(f"{kind}: {seconds:.1f} s (load {load[0]:.1f} -> {load[1]:.1f})", flush=True)
        (scratch / "bad.toml").write_text(BAD)
        times, loads = [], []
        for _ in range(args.repeats):
            seconds, code, err, load = _timed(["run", str(scratch / "bad.toml"), "--out", str(scratch / "x")], env)
            if code != 2 or "model.hidden" not in err:
                raise SystemExit(f"the bad config was not refused as expected ({code}): {err}")
            times.append(seconds)
            loads.extend(load)
        rows.append({"kind": "reject", "command": "jaxrnn run bad.toml (hidden = \"eight\")",
                     "wall_s": statistics.median(times), "wall_s_all": times,
                     "loadavg_before": loads[0], "loadavg_after": loads[-1]})
        print(f"reject: median {statistics.median(times):.2f} s of {args.repeats}", flush=True)
    cold, warm, reject = (r["wall_s"] for r in rows)
    data = {
        "benchmark": "quickstart",
        "command": "python benchmarks/quickstart.py",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": rows,
        "targets": {"warm_speedup (cold/warm, >= 3)": round(cold / warm, 2), "reject_s (< 2)": round(reject, 2)},
        "notes": "each measurement is a new process, as a user runs it (interpreter start, imports, compilation, "
                 "training, store and figure); the machine is shared: see the load average of each row",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(f"warm speed-up {cold / warm:.2f}x; wrote {args.out}")


if __name__ == "__main__":
    main()
