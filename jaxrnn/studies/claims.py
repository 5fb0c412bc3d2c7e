"""Claims tables: finding by finding, whether a paper's result holds in our runs.

Every reproduction (``jaxrnn reproduce STUDY``) ends by writing ``claims.json`` and the same
rows as a Markdown table, ``claims.md``. The format is the project's (its design notes,
"Reproductions")::

    {"study": "mcmahan-2021", "scale": "cpu", "command": "jaxrnn reproduce mcmahan",
     "jaxrnn_version": "0.1.0", "created": "2026-12-10T12:00:00Z",
     "claims": [{"id": "svcca-hebbian-apart", "section": "3.1", "figure": "fig1ab_svcca.png",
                 "paper": "...", "statistic": "...", "value": 0.21,
                 "threshold": "> 0 with permutation p < 0.05", "n": 96, "p_value": 0.002,
                 "baseline": {"untrained": 0.01}, "holds": true, "note": ""}]}

``holds`` is ``true``, ``false`` or ``null``; ``null`` means the statistic could not be
computed, and then ``note`` must say why. A claim that does not hold is written as not holding,
never dropped. Non-finite numbers are not valid JSON, so a NaN value is refused: report it as
``value = None`` with ``holds = None`` and a note.

The threshold is decided *before* the run and written as text; :func:`decide` applies the common
forms (``value > t``, ``value < t``, optionally with ``p < alpha``) so that the text and the
verdict cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any, Iterable

FIELDS = ("id", "section", "figure", "paper", "statistic", "value", "threshold", "n", "p_value",
          "baseline", "holds", "note")
TOP_FIELDS = ("study", "scale", "command", "jaxrnn_version", "created", "claims")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One finding of a paper, the statistic that tests it, and the verdict.

    Attributes:
      id: short unique slug, e.g. ``"svcca-hebbian-apart"``.
      section: the paper's section (``"3.1"``) or figure/appendix (``"Fig. 2"``, ``"A.3"``).
      figure: file name of the figure that shows it (beside ``claims.json``), or ``""``.
      paper: what the paper says, in one sentence.
      statistic: what was computed, on which members.
      value: the measured number (``None`` when it could not be computed).
      threshold: the decision rule as text, fixed before the run (``"> 0 with p < 0.05"``).
      n: how many networks / seeds / samples the statistic is computed from.
      holds: ``True`` / ``False``; ``None`` only together with a ``note`` saying why.
      p_value: a p-value where the rule uses one.
      baseline: the same statistic on untrained networks or under a null (name -> value).
      note: anything a reader needs (why ``None``, which members were excluded, ...).
    """

    id: str
    section: str
    figure: str
    paper: str
    statistic: str
    value: float | None
    threshold: str
    n: int | None
    holds: bool | None
    p_value: float | None = None
    baseline: dict[str, float | None] | None = None
    note: str = ""

    def __post_init__(self):
        validate_claim(dataclasses.asdict(self))

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["value"] = _number(row["value"])
        row["p_value"] = _number(row["p_value"])
        if row["baseline"] is not None:
            row["baseline"] = {k: _number(v) for k, v in row["baseline"].items()}
        return {f: row[f] for f in FIELDS}


def _number(x):
    """A plain Python float (or int) for JSON; NumPy/JAX scalars are converted."""
    if x is None or isinstance(x, (bool, int)):
        return x
    return float(x)


def _is_number(x) -> bool:
    try:
        return not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def decide(value: float | None, *, above: float | None = None, below: float | None = None,
           p_value: float | None = None, alpha: float | None = None) -> bool | None:
    """Apply a threshold fixed in advance: ``above < value < below`` and, if given, ``p < alpha``.

    Returns None when ``value`` (or a required ``p_value``) is missing or not finite.

    Example:
        >>> decide(0.21, above=0.0, p_value=0.002, alpha=0.05)
        True
        >>> decide(0.21, above=0.0, p_value=0.2, alpha=0.05)
        False
        >>> decide(None, above=0.0) is None
        True
    """
    if value is None or not _is_number(value):
        return None
    ok = True
    if above is not None:
        ok &= float(value) > above
    if below is not None:
        ok &= float(value) < below
    if alpha is not None:
        if p_value is None or not _is_number(p_value):
            return None
        ok &= float(p_value) < alpha
    return bool(ok)


def validate_claim(row: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the field if ``row`` is not a valid claim row."""
    missing = [f for f in FIELDS if f not in row]
    if missing:
        raise ValueError(f"claim {row.get('id', '?')!r}: missing field(s) {missing}; a claim has {list(FIELDS)}")
    extra = [f for f in row if f not in FIELDS]
    if extra:
        raise ValueError(f"claim {row['id']!r}: unknown field(s) {extra}; a claim has {list(FIELDS)}")
    cid = row["id"]
    for f in ("id", "section", "figure", "paper", "statistic", "threshold", "note"):
        if not isinstance(row[f], str):
            raise ValueError(f"claim {cid!r}: {f} = {row[f]!r} is not allowed: a string")
    for f in ("id", "paper", "statistic", "threshold"):
        if not row[f].strip():
            raise ValueError(f"claim {cid!r}: {f} is empty; it must say something")
    for f in ("value", "p_value"):
        if row[f] is not None and not _is_number(row[f]):
            raise ValueError(f"claim {cid!r}: {f} = {row[f]!r} is not allowed: a finite number or None "
                             "(report a statistic that could not be computed as None with a note)")
    if row["p_value"] is not None and not 0.0 <= float(row["p_value"]) <= 1.0:
        raise ValueError(f"claim {cid!r}: p_value = {row['p_value']!r} is not allowed: a number in [0, 1]")
    if row["n"] is not None and (isinstance(row["n"], bool) or not isinstance(row["n"], int) or row["n"] < 0):
        raise ValueError(f"claim {cid!r}: n = {row['n']!r} is not allowed: a non-negative int or None")
    if row["holds"] not in (True, False, None):
        raise ValueError(f"claim {cid!r}: holds = {row['holds']!r} is not allowed: true, false or null")
    if row["holds"] is None and not row["note"].strip():
        raise ValueError(f"claim {cid!r}: holds is null, so note must say why the statistic could not be computed")
    if row["holds"] is not None and row["value"] is None:
        raise ValueError(f"claim {cid!r}: holds = {row['holds']} needs a value; without one, holds must be null")
    baseline = row["baseline"]
    if baseline is not None:
        if not isinstance(baseline, dict):
            raise ValueError(f"claim {cid!r}: baseline = {baseline!r} is not allowed: a dict name -> number or None")
        for k, v in baseline.items():
            if not isinstance(k, str) or (v is not None and not _is_number(v)):
                raise ValueError(f"claim {cid!r}: baseline[{k!r}] = {v!r} is not allowed: a finite number or None")


def validate_claims(doc: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the field if ``doc`` is not a valid ``claims.json``."""
    if not isinstance(doc, dict):
        raise ValueError(f"claims document is a {type(doc).__name__}, not a JSON object")
    missing = [f for f in TOP_FIELDS if f not in doc]
    if missing:
        raise ValueError(f"claims document: missing field(s) {missing}; it has {list(TOP_FIELDS)}")
    for f in TOP_FIELDS[:-1]:
        if not isinstance(doc[f], str) or not doc[f]:
            raise ValueError(f"claims document: {f} = {doc[f]!r} is not allowed: a non-empty string")
    try:
        _dt.datetime.fromisoformat(doc["created"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"claims document: created = {doc['created']!r} is not an ISO 8601 time") from None
    if not isinstance(doc["claims"], list) or not doc["claims"]:
        raise ValueError("claims document: claims must be a non-empty list")
    seen = set()
    for row in doc["claims"]:
        validate_claim(row)
        if row["id"] in seen:
            raise ValueError(f"claims document: id {row['id']!r} appears twice")
        seen.add(row["id"])


def claims_document(study: str, scale: str, command: str, claims: Iterable[Claim],
                    created: str | None = None) -> dict[str, Any]:
    """The ``claims.json`` object for ``claims`` (validated)."""
    from jaxrnn import __version__

    created = created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    doc = {"study": study, "scale": scale, "command": command, "jaxrnn_version": __version__,
           "created": created, "claims": [c.to_dict() for c in claims]}
    validate_claims(doc)
    return doc


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.4g}"


def _verdict(holds) -> str:
    return {True: "**holds**", False: "**does not hold**", None: "not computed"}[holds]


def claims_markdown(doc: dict[str, Any]) -> str:
    """The claims as a Markdown table (one row per claim, in order)."""
    lines = [f"# Claims: {doc['study']} ({doc['scale']} scale)", "",
             f"`{doc['command']}` — jaxrnn {doc['jaxrnn_version']}, {doc['created']}", "",
             "| id | section | paper | statistic | value | threshold | n | p | baseline | verdict | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in doc["claims"]:
        base = "; ".join(f"{k}: {_fmt(v)}" for k, v in (c["baseline"] or {}).items()) or "—"
        cells = [c["id"], c["section"], c["paper"], c["statistic"], _fmt(c["value"]), c["threshold"],
                 _fmt(c["n"]), _fmt(c["p_value"]), base, _verdict(c["holds"]), c["note"] or ""]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    held = sum(c["holds"] is True for c in doc["claims"])
    failed = sum(c["holds"] is False for c in doc["claims"])
    missing = sum(c["holds"] is None for c in doc["claims"])
    lines += ["", f"{held} of {len(doc['claims'])} claims hold, {failed} do not, {missing} could not be computed."]
    return "\n".join(lines) + "\n"


def write_claims(directory: str | Path, study: str, scale: str, command: str,
                 claims: Iterable[Claim], created: str | None = None) -> dict[str, Any]:
    """Write ``claims.json`` and ``claims.md`` into ``directory``; returns the document."""
    doc = claims_document(study, scale, command, list(claims), created)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "claims.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(directory / "claims.json")
    (directory / "claims.md").write_text(claims_markdown(doc))
    return doc


def load_claims(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``claims.json`` (a file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "claims.json"
    doc = json.loads(path.read_text())
    validate_claims(doc)
    return doc


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """One printed line per claim: verdict, id, value vs threshold (for a script's stdout)."""
    tag = {True: "HOLDS ", False: "FAILS ", None: "N/A   "}
    out = []
    for c in doc["claims"]:
        p = f", p = {_fmt(c['p_value'])}" if c["p_value"] is not None else ""
        out.append(f"{tag[c['holds']]} {c['id']}: {c['statistic']} = {_fmt(c['value'])}{p} "
                   f"(threshold {c['threshold']}, n = {_fmt(c['n'])})" + (f" — {c['note']}" if c["note"] else ""))
    return out
