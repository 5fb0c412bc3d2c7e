"""Every study's reproduction end to end at ``--scale test``: figures, claims and report.

``jaxrnn reproduce STUDY --scale test`` exercises every step of a study (population runs,
analyses, figures, claims, the HTML report) in a few updates; its numbers mean nothing. It costs
minutes of CPU per study (mostly XLA compiling the population programs), too much for the test
suite, whose tests compare the pieces with independent references instead — except Ger & Barak,
whose test scale also runs in the suite (``tests/test_ger_barak_reproduce.py``; here, without the
suite's cheap-compile flags, 83 s of CPU at load 3.2 on 2026-12-03). Run it after changing a
study, the store or the report::

    python benchmarks/reproduce_smoke.py                # all studies
    python benchmarks/reproduce_smoke.py ger-barak      # one

Checks, per study: exit code 0; every file of the study's ``FIGURES`` written and not empty; a
``claims.json`` that :func:`jaxrnn.studies.claims.load_claims` validates, whose figure
references are in ``FIGURES``; a ``report.html`` with one claims-table row per claim. Prints
one line per study with its wall and CPU time and the load average.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def smoke(study: str, out: Path) -> str:
    from jaxrnn.cli import main
    from jaxrnn.studies import study_module
    from jaxrnn.studies.claims import load_claims

    module = study_module(study)
    wall, cpu, load = time.time(), _cpu(), os.getloadavg()[0]
    code = main(["reproduce", study, "--scale", "test", "--out", str(out), "--quiet"])
    if code != 0:
        raise SystemExit(f"{study}: jaxrnn reproduce exited with {code}")
    missing = [name for name in module.FIGURES if not (out / name).is_file() or (out / name).stat().st_size == 0]
    doc = load_claims(out)
    stray = [c["id"] for c in doc["claims"] if c.get("figure") and c["figure"] not in module.FIGURES]
    html = (out / "report.html").read_text()
    rows = html.count('<tr class="claim-')
    problems = ([f"figures not written: {missing}"] if missing else []) + (
        [f"claims citing no figure of FIGURES: {stray}"] if stray else []) + (
        [f"{rows} claims-table rows for {len(doc['claims'])} claims"] if rows != len(doc["claims"]) else [])
    if problems:
        raise SystemExit(f"{study}: " + "; ".join(problems))
    return (f"{study}: ok, {len(module.FIGURES)} figures, {len(doc['claims'])} claims ({rows} report rows); "
            f"{time.time() - wall:.0f} s wall, {_cpu() - cpu:.0f} s CPU, load {load:.1f} at start")


def main(argv: list[str]) -> None:
    from jaxrnn.studies import STUDIES

    studies = argv or sorted(STUDIES)
    with tempfile.TemporaryDirectory() as tmp:
        for study in studies:
            print(smoke(study, Path(tmp) / study), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
