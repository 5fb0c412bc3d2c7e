"""The ``reproduce`` and ``report`` subcommands of the ``jaxrnn`` command line.

    jaxrnn reproduce {mcmahan, huang, ger-barak} [--full | --scale test|cpu|full] [--out DIR] [--quiet]
    jaxrnn report DIR [--out FILE]

``reproduce`` runs a study module (:mod:`jaxrnn.studies`) into ``DIR`` (default
``reproductions/<study>``): figures, ``claims.json``/``claims.md``, its population runs
under ``DIR`` — re-running the same command resumes them — and ends by writing
``DIR/report.html``. ``--scale test`` is the tiny scale the test suite uses; the default
``cpu`` scale runs on a laptop CPU; ``--full`` is the study's own scale. ``report`` writes the
HTML page of any run directory (:mod:`jaxrnn.report`). :func:`add_parsers` attaches both to
the ``jaxrnn`` parser, so :mod:`jaxrnn.cli` only has to call it.
"""

from __future__ import annotations

import argparse
import sys


def _reproduce(args) -> int:
    from jaxrnn import studies

    scale = "full" if args.full else args.scale
    try:
        studies.check_study(args.study)
        studies.check_scale(scale)
        if args.full and args.scale not in ("cpu", "full"):
            raise ValueError(f"--scale = {args.scale!r} together with --full is not allowed: give one of them")
        from jaxrnn.cli import use_cpu_devices

        use_cpu_devices(args.cpu_devices)  # as `jaxrnn run`: one XLA CPU device per core
        studies.study_module(args.study)  # a study whose module is missing fails here, before anything runs
    except ValueError as error:
        print(f"jaxrnn reproduce: {error}", file=sys.stderr)
        return 2
    out = args.out or f"reproductions/{args.study}"
    if not args.quiet:
        print(f"jaxrnn reproduce: {args.study} at {scale} scale -> {out}", file=sys.stderr)
    try:
        doc = studies.reproduce(args.study, out, scale=scale, quiet=args.quiet)
    except ValueError as error:
        print(f"jaxrnn reproduce: {error}", file=sys.stderr)
        return 2
    from jaxrnn.report import REPORT_NAME

    # the study printed its summary lines (jaxrnn.studies.claims.summary_lines) unless quiet
    held = sum(c["holds"] is True for c in doc["claims"])
    print(f"{held} of {len(doc['claims'])} claims hold; report: {out}/{REPORT_NAME}")
    return 0


def _report(args) -> int:
    from jaxrnn.report import write_report

    try:
        path = write_report(args.dir, out=args.out)
    except ValueError as error:
        print(f"jaxrnn report: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``reproduce`` and ``report`` to the ``jaxrnn`` command's sub-parsers."""
    from jaxrnn.studies import SCALES, STUDIES

    p = sub.add_parser("reproduce", help="reproduce a study: figures, claims table and report")
    p.add_argument("study", help=f"one of {', '.join(sorted(STUDIES))}")
    p.add_argument("--full", action="store_true", help="the study's own scale (long: see the study's docs)")
    p.add_argument("--scale", default="cpu", help=f"one of {', '.join(SCALES)} (default cpu; --full = full)")
    p.add_argument("--out", help="output directory (default: reproductions/STUDY); re-running resumes")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="XLA CPU devices the host is split into (default: one per core; 1: a single device)")
    p.set_defaults(func=_reproduce)
    p = sub.add_parser("report", help="an HTML report of a run or reproduction directory")
    p.add_argument("dir", help="a directory written by `jaxrnn run` or `jaxrnn reproduce`")
    p.add_argument("--out", help="the HTML file (default: DIR/report.html)")
    p.set_defaults(func=_report)
