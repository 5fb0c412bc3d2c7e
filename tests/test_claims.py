"""The claims-table format (the project's design notes, "Reproductions")."""

import json

import numpy as np
import pytest

from jaxrnn.studies.claims import Claim, claims_markdown, decide, load_claims, validate_claims, write_claims


def _claim(**kw):
    row = dict(id="a", section="3.1", figure="f.png", paper="p", statistic="s", value=0.2, threshold="> 0",
               n=10, holds=True)
    row.update(kw)
    return Claim(**row)


def test_round_trip_and_markdown(tmp_path):
    claims = [_claim(p_value=np.float32(0.01), baseline={"untrained": np.float64(0.0)}),
              _claim(id="b", value=None, holds=None, n=None, note="no member met the criterion")]
    doc = write_claims(tmp_path, "study-x", "cpu", "jaxrnn reproduce x", claims, created="2026-12-03T12:00:00Z")
    on_disk = json.loads((tmp_path / "claims.json").read_text())
    assert on_disk == doc == load_claims(tmp_path)
    assert list(on_disk["claims"][0]) == ["id", "section", "figure", "paper", "statistic", "value", "threshold",
                                          "n", "p_value", "baseline", "holds", "note"]
    assert on_disk["claims"][0]["p_value"] == pytest.approx(0.01) and isinstance(on_disk["claims"][0]["p_value"], float)
    md = (tmp_path / "claims.md").read_text()
    assert md == claims_markdown(doc)
    rows = [line for line in md.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert len(rows) == 2 and "**holds**" in rows[0] and "not computed" in rows[1]
    assert "1 of 2 claims hold, 0 do not, 1 could not be computed." in md


@pytest.mark.parametrize("kw, field", [
    (dict(value=float("nan")), "value"),
    (dict(holds=None), "note"),
    (dict(value=None), "needs a value"),
    (dict(p_value=1.5), "p_value"),
    (dict(n=-1), "n ="),
    (dict(holds="yes"), "holds"),
    (dict(baseline={"untrained": float("inf")}), "baseline"),
    (dict(paper=" "), "paper is empty"),
])
def test_bad_claims_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        _claim(**kw)


def test_bad_documents():
    good = {"study": "s", "scale": "cpu", "command": "c", "jaxrnn_version": "0", "created": "2026-12-03T12:00:00Z",
            "claims": [_claim().to_dict()]}
    validate_claims(good)
    with pytest.raises(ValueError, match="twice"):
        validate_claims({**good, "claims": [_claim().to_dict()] * 2})
    with pytest.raises(ValueError, match="created"):
        validate_claims({**good, "created": "yesterday"})
    with pytest.raises(ValueError, match="missing"):
        validate_claims({k: v for k, v in good.items() if k != "scale"})


def test_decide():
    assert decide(0.3, above=0.0) is True and decide(-0.1, above=0.0) is False
    assert decide(0.3, above=0.0, below=0.2) is False
    assert decide(0.3, above=0.0, p_value=0.01, alpha=0.05) is True
    assert decide(0.3, above=0.0, p_value=0.2, alpha=0.05) is False
    assert decide(float("nan"), above=0.0) is None and decide(0.3, above=0.0, alpha=0.05) is None
