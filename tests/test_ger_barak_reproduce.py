"""`jaxrnn reproduce ger-barak` end to end at the tiny test scale (issue 17).

One in-process run of the command line writes the figures, ``claims.json``/``claims.md`` and
``report.html``. Checked against what the files must be, independently of the code that wrote
them: every figure of ``FIGURES`` is a PNG (signature and image size read from its header);
``claims.json`` passes :func:`jaxrnn.studies.claims.load_claims` and, checked here field by
field, the format of the project's design notes ("Reproductions": the top-level keys, the twelve
claim fields, ``holds`` true/false/null with a note saying why when null); it has the same rows,
in the same order, as the committed cpu-scale table ``docs/studies/ger-barak/claims.json`` (the
test scale drops no finding); ``claims.md`` and the report's claims table have one row per
claim with the verdict of ``holds``, and the report embeds every figure, byte for byte, with its
caption. The numbers of the test scale mean nothing and are not
compared. The browser checks of the report run on the toy study (tests/test_report.py).
"""

import base64
import html as html_lib
import json
import math
import re
import struct
from datetime import datetime
from pathlib import Path

from jaxrnn.cli import main
from jaxrnn.studies import ger_barak

DOCS_TABLE = Path(__file__).resolve().parents[1] / "docs" / "studies" / "ger-barak" / "claims.json"
TOP = {"study", "scale", "command", "jaxrnn_version", "created", "claims"}
FIELDS = {"id", "section", "figure", "paper", "statistic", "value", "threshold", "n", "p_value", "baseline",
          "holds", "note"}
VERDICT = {True: "holds", False: "does not hold", None: "not computed"}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (PNG spec: signature, then IHDR first)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_design_format(doc: dict) -> None:
    """The claims document format of the design notes, written out independently of jaxrnn.studies.claims."""
    assert set(doc) == TOP
    for key in TOP - {"claims"}:
        assert isinstance(doc[key], str) and doc[key], key
    datetime.fromisoformat(doc["created"].replace("Z", "+00:00"))
    assert isinstance(doc["claims"], list) and doc["claims"]
    for c in doc["claims"]:
        assert set(c) == FIELDS, c.get("id")
        for key in ("id", "section", "paper", "statistic", "threshold"):
            assert isinstance(c[key], str) and c[key].strip(), (c["id"], key)
        assert isinstance(c["figure"], str) and isinstance(c["note"], str)
        assert c["holds"] in (True, False, None), c["id"]
        assert c["value"] is None or is_number(c["value"]), c["id"]
        if c["holds"] is None:
            assert c["note"].strip(), f"{c['id']}: not computed without a note saying why"
        else:
            assert is_number(c["value"]), f"{c['id']}: a verdict without a value"
        assert c["n"] is None or (isinstance(c["n"], int) and not isinstance(c["n"], bool) and c["n"] >= 0)
        assert c["p_value"] is None or (is_number(c["p_value"]) and 0 <= c["p_value"] <= 1)
        assert c["baseline"] is None or (isinstance(c["baseline"], dict) and all(
            isinstance(k, str) and (v is None or is_number(v)) for k, v in c["baseline"].items()))
    ids = [c["id"] for c in doc["claims"]]
    assert len(set(ids)) == len(ids)


def test_reproduce_ger_barak_at_test_scale(tmp_path, capsys):
    from jaxrnn.studies.claims import load_claims

    out = tmp_path / "gb"
    code = main(["reproduce", "ger-barak", "--scale", "test", "--out", str(out), "--quiet", "--cpu-devices", "1"])
    assert code == 0, capsys.readouterr().err

    for name in ger_barak.FIGURES:
        width, height = png_size(out / name)
        assert width >= 300 and height >= 200, (name, width, height)

    doc = load_claims(out)  # jaxrnn.studies.claims.validate_claims
    raw = json.loads((out / "claims.json").read_text())
    check_design_format(raw)
    assert raw == doc
    assert (raw["study"], raw["scale"]) == ("ger-barak-2025", "test")
    assert raw["command"].startswith("jaxrnn reproduce ger-barak")
    committed = json.loads(DOCS_TABLE.read_text())
    assert [c["id"] for c in raw["claims"]] == [c["id"] for c in committed["claims"]]
    for c in raw["claims"]:
        assert c["figure"] in ger_barak.FIGURES, c["id"]

    md_rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in (out / "claims.md").read_text().splitlines()
               if line.startswith("| ") and not line.startswith("| id |")]
    assert [r[0].strip() for r in md_rows] == [c["id"] for c in raw["claims"]]
    for r, c in zip(md_rows, raw["claims"]):  # columns: id ... verdict, note
        assert r[-2].strip().strip("*") == VERDICT[c["holds"]], c["id"]

    html = (out / "report.html").read_text()
    table = re.search(r'<table[^>]*id="claims-table".*?</table>', html, re.S).group(0)
    rows = re.findall(r'<tr class="claim-(\w+)" id="claim-([^"]+)">(.*?)</tr>', table, re.S)
    assert len(rows) == len(raw["claims"])
    classes = {True: "holds", False: "fails", None: "na"}
    for (cls, _, cells), c in zip(rows, raw["claims"]):
        assert cls == classes[c["holds"]], c["id"]
        assert f">{c['id']}<" in cells
        assert re.sub(r"<[^>]+>", "", cells.split("</td>")[0]).strip() == VERDICT[c["holds"]], c["id"]
    for name, caption in ger_barak.FIGURES.items():  # each figure embedded whole, with its caption
        assert base64.b64encode((out / name).read_bytes()).decode("ascii") in html, name
        assert html_lib.escape(caption, quote=True) in html, name
