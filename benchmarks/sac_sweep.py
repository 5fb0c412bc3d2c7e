"""Recurrent SAC sweeps on the pendulum, run with jaxrnn itself, and their result tables.

Runs a config of ``benchmarks/sac_sweep/`` with :func:`jaxrnn.population.run` (resumable: the
run directory keeps chunk checkpoints, so the same command continues a killed run) and writes a
table of every member — task, seed, swept fields, final return, best return and how far the
final one lies below it, the first iteration at ≥ −250 — and, per condition (task × swept
fields), the issue's learning target: mean final return over seeds ≥ −250 and no agent's final
return more than 150 below its own best. Returns are ``val_return`` (``evaluate``: deterministic
episodes, 20 in these configs). Also tabulates existing run directories (``--runs``).

    python benchmarks/sac_sweep.py benchmarks/sac_sweep/target.toml [--out DIR]
    python benchmarks/sac_sweep.py --runs DIR [DIR ...] --name explore
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TARGET_MEAN, TARGET_DROP, SOLVED = -250.0, 150.0, -250.0


def rows_of(ds) -> list[dict]:
    """One row per member of a results store."""
    swept = [c for c in ds.coords if c.startswith("rule.") and c != "rule.name" and ds[c].dims == ("member",)]
    returns = ds.val_return.values
    rows = []
    for m in range(returns.shape[0]):
        r = returns[m]
        solved = np.flatnonzero(r >= SOLVED)
        rows.append({"task": str(ds["task.name"].values[m]), "seed": int(ds.seed.values[m]),
                     **{c: float(ds[c].values[m]) for c in swept},
                     "iterations": int(np.sum(np.isfinite(r))), "final": float(r[-1]), "best": float(np.nanmax(r)),
                     "drop": float(np.nanmax(r) - r[-1]),
                     "first_at_-250": int(ds.evaluation_update.values[solved[0]]) if solved.size else None,
                     "diverged": bool(ds.diverged.values[m])})
    return rows


def conditions(rows: list[dict]) -> list[dict]:
    """Per condition (all fields but seed and the measurements): the learning target."""
    keys = [k for k in rows[0] if k not in ("seed", "iterations", "final", "best", "drop", "first_at_-250", "diverged")]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for values, members in groups.items():
        finals = np.array([m["final"] for m in members])
        drops = np.array([m["drop"] for m in members])
        judged = len(members) >= 5 and min(m["iterations"] for m in members) >= 100  # the target's budget
        out.append({**dict(zip(keys, values)), "seeds": len(members), "mean_final": float(finals.mean()),
                    "min_final": float(finals.min()), "max_drop": float(drops.max()),
                    "met": bool(finals.mean() >= TARGET_MEAN and np.all(drops <= TARGET_DROP)) if judged else None})
    return out


def markdown(title: str, rows: list[dict], summary: list[dict], note: str) -> str:
    def table(items):
        cols = list(items[0])
        fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("–" if v is None else str(v))  # noqa: E731
        return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                         + ["| " + " | ".join(fmt(item[c]) for c in cols) + " |" for item in items])
    return (f"# {title}\n\n{note}\n\nTarget per condition: mean final return ≥ {TARGET_MEAN:g} and no member's final "
            f"return more than {TARGET_DROP:g} below its best, judged at the study's budget only (≥ 5 seeds, 100 "
            f"iterations; `met` is – otherwise).\n\n## Conditions\n\n{table(summary)}\n\n"
            f"## Members\n\n{table(rows)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", help="a TOML of benchmarks/sac_sweep/")
    parser.add_argument("--out", help="run directory (default /tmp/jaxrnn-sac-sweep/<config stem>)")
    parser.add_argument("--runs", nargs="+", help="tabulate these finished run directories instead")
    parser.add_argument("--name", help="table name (default: the config stem)")
    args = parser.parse_args()
    from jaxrnn import population

    if args.runs:
        stores = [population.load(d) for d in args.runs]
        name, command, wall = args.name, "python benchmarks/sac_sweep.py --runs " + " ".join(args.runs), None
    else:
        config = population.load_config(args.config)
        name = args.name or Path(args.config).stem
        out = args.out or f"/tmp/jaxrnn-sac-sweep/{name}"
        before, t0 = os.getloadavg(), time.perf_counter()
        stores = [population.run(config, out=out)]
        wall = time.perf_counter() - t0
        command = f"python benchmarks/sac_sweep.py {args.config}"
    rows = [row for ds in stores for row in rows_of(ds)]
    summary = conditions(rows)
    load = os.getloadavg()
    note = (f"`{command}`; wall {wall:.0f} s, load average {before} before and {load} after." if wall is not None
            else f"`{command}`; load average now {load}.")
    results = HERE / "results"
    (results / f"sac_sweep-{name}.md").write_text(markdown(f"Recurrent SAC sweep: {name}", rows, summary, note))
    (results / f"sac_sweep-{name}.json").write_text(json.dumps({"command": command, "note": note, "conditions": summary,
                                                               "members": rows}, indent=1))
    print(markdown(f"Recurrent SAC sweep: {name}", rows, summary, note))


if __name__ == "__main__":
    main()
