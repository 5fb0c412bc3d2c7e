"""Reproductions of the three seed studies, one module per study, and their registry.

Each study module (``mcmahan``, ``huang``, ``ger_barak``) is a thin composition of the library —
population runs, analyses, figures — that ends with a claims table
(:mod:`jaxrnn.studies.claims`): ``claims.json`` and ``claims.md`` beside the figures. A study
module exposes::

    FIGURES: dict[str, str]     # figure file name -> caption (the report shows it beside the figure)
    def reproduce(out, *, scale="cpu", quiet=False) -> dict     # returns the claims document

``scale`` is ``"test"`` (tiny, for tests), ``"cpu"`` (the laptop-CPU default) or ``"full"``
(the study's own scale). The study keeps its population runs under ``out``, so calling it again
with the same ``out`` resumes (or reloads) them instead of retraining.

:func:`reproduce` here runs a study by its command-line name and writes the HTML report
(:func:`jaxrnn.report.write_report`) at the end — the same as ``jaxrnn reproduce STUDY``:

>>> sorted(STUDIES)
['ger-barak', 'huang', 'mcmahan']
>>> study_for_command("jaxrnn reproduce ger-barak --full")
'ger-barak'

The studies: McMahan, Kleinman & Kao (2021), "Learning rules vs attractors" (``mcmahan``);
Huang, Singh & Rajan (2024), RNN controllers on Pendulum (``huang``); Ger & Barak (2025),
learning dynamics in closed loop (``ger-barak``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from jaxrnn.studies.claims import Claim, decide, load_claims, validate_claims, write_claims

STUDIES = {"mcmahan": "jaxrnn.studies.mcmahan", "huang": "jaxrnn.studies.huang",
           "ger-barak": "jaxrnn.studies.ger_barak"}
SCALES = ("test", "cpu", "full")


def check_study(name: str) -> str:
    """``name`` if it is a registered study, else a one-line ``ValueError`` listing them."""
    if name not in STUDIES:
        raise ValueError(f"study = {name!r} is not allowed: must be one of {sorted(STUDIES)}")
    return name


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale = {scale!r} is not allowed: must be one of {list(SCALES)}")
    return scale


def study_module(name: str) -> ModuleType:
    """The module of study ``name`` (imported on demand: each pulls in its analyses)."""
    module_name = STUDIES[check_study(name)]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise ValueError(f"study = {name!r}: its module {module_name} is not in this version of jaxrnn") from None


def study_for_command(command: str) -> str | None:
    """The study named by a claims document's ``command`` (``"jaxrnn reproduce huang"`` -> ``"huang"``)."""
    words = str(command).split()
    for i, word in enumerate(words[:-1]):
        if word == "reproduce" and words[i + 1] in STUDIES:
            return words[i + 1]
    return None


def figure_captions(name: str | None) -> dict[str, str]:
    """The study's ``FIGURES`` (file name -> caption), or ``{}`` when unknown or not installed."""
    if name not in STUDIES:
        return {}
    try:
        return dict(getattr(study_module(name), "FIGURES", {}))
    except ValueError:
        return {}


def reproduce(name: str, out: str | Path | None = None, *, scale: str = "cpu", quiet: bool = False,
              report: bool = True) -> dict[str, Any]:
    """Run study ``name`` into ``out`` (default ``reproductions/<name>``) and write its report.

    Returns the claims document. Bad ``name`` or ``scale`` raise a one-line ``ValueError``
    before anything runs or is written. Re-running with the same ``out`` resumes the study's
    population runs. With ``report`` (default), ``out/report.html`` is written at the end.
    """
    check_study(name)
    check_scale(scale)
    module = study_module(name)
    out = Path(out) if out is not None else Path("reproductions") / name
    doc = module.reproduce(out, scale=scale, quiet=quiet)
    if report:
        from jaxrnn.report import write_report

        write_report(out, captions=getattr(module, "FIGURES", {}))
    return doc


__all__ = ["SCALES", "STUDIES", "Claim", "check_scale", "check_study", "decide", "figure_captions", "load_claims",
           "reproduce", "study_for_command", "study_module", "validate_claims", "write_claims"]
