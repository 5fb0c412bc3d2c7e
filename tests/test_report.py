"""`jaxrnn report` and `jaxrnn reproduce`: the page's numbers against the store, and a real browser.

The per-condition table is compared with a hand-written loop over the stored arrays; the page is
opened in headless Chromium (tests/browser.py): no console errors, every image decodes, the
claims table has one row per claim, sorting by a column orders its values, and a screenshot is
taken.
"""

import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest

import jaxrnn.studies
from jaxrnn import population
from jaxrnn.cli import main
from jaxrnn.studies.claims import load_claims

from browser import browser, image_widths
from toy_run import toy_run



class Tables(HTMLParser):
    """Every ``<table>``'s rows as ``[(text, data-v), ...]`` plus every ``<img>``'s ``src``."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"id": attrs.get("id"), "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ["", attrs.get("data-v")]
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append((self._cell[0].strip(), self._cell[1]))
            self._cell = None


def parse(path):
    parser = Tables()
    parser.feed(path.read_text())
    return parser


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "toy"
    shutil.copytree(toy_run(), out)
    assert main(["report", str(out)]) == 0
    return out


def test_report_condition_table_matches_the_store(run_dir):
    ds = population.load(run_dir)
    page = parse(run_dir / "report.html")
    table = next(t for t in page.tables if t["rows"][0][0][0] == "condition")
    header = [h for h, _ in table["rows"][0]]
    rows = {r[0][0]: dict(zip(header, r)) for r in table["rows"][1:]}
    noise = ds["task.noise_std"].values
    assert len(rows) == 2
    for level in (0.1, 1.0):
        row = next(r for label, r in rows.items() if f"noise_std={level:g}" in label)
        members = np.nonzero(noise == level)[0]
        assert row["members"][0] == str(len(members))
        finals = []
        for m in members:  # last finite validation accuracy, by hand
            values = [v for v in ds["val_accuracy"].values[m] if np.isfinite(v)]
            finals.append(values[-1])
        np.testing.assert_allclose(float(row["final accuracy (validation)"][1]), np.mean(finals), rtol=1e-6)
        hits = [int(ds["converged_update"].values[m]) for m in members if ds["converged_update"].values[m] >= 0]
        assert row["converged"][0].startswith(f"{len(hits)} (")
        assert row["diverged"][0] == str(int(ds["diverged"].values[members].sum()))
        if hits:
            assert float(row["updates to criterion"][1]) == np.median(hits)
        else:
            assert row["updates to criterion"][0] == "never"
    # self-contained: every image embedded, nothing fetched from a network
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    text = (run_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)
    assert ds.attrs["config"].strip() in text.replace("&quot;", '"')
    assert json.loads(ds.attrs["versions"])["jax"] in text


def test_report_loads_in_a_real_browser_and_sorts(run_dir, tmp_path):
    with browser() as open_page:
        page, errors = open_page(run_dir / "report.html")
        widths = image_widths(page)
        assert errors == [] and widths and min(widths) > 0
        header = page.locator("table.sortable").first.locator("th", has_text="final accuracy")
        column = page.locator("table.sortable").first.locator("th").all_inner_texts().index(header.inner_text())
        for direction in ("ascending", "descending"):
            header.click()
            values = page.evaluate(f"""Array.from(document.querySelector("table.sortable").tBodies[0].rows)
                                       .map(r => parseFloat(r.cells[{column}].getAttribute("data-v")))""")
            assert values == sorted(values, reverse=direction == "descending")
        page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
    assert (tmp_path / "run.png").stat().st_size > 20_000


def test_report_refuses_a_directory_without_results(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds neither" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_reproduce_writes_claims_and_a_report_with_one_row_per_claim(run_dir, tmp_path, monkeypatch, capsys):
    """The toy study (tests/report_study.py) through `jaxrnn reproduce`; its population is the
    fixture's run, copied in place, so the study resumes it (loads the complete run) instead of
    training it again."""
    monkeypatch.setitem(jaxrnn.studies.STUDIES, "toy", "report_study")
    out = tmp_path / "toy"
    shutil.copytree(run_dir, out / "runs" / "toy", ignore=shutil.ignore_patterns("report.html"))
    before = population.load(out / "runs" / "toy")["val_accuracy"].values
    assert main(["reproduce", "toy", "--scale", "test", "--out", str(out), "--quiet"]) == 0
    doc = load_claims(out)  # validates
    assert [c["id"] for c in doc["claims"]] == ["noise-hurts", "all-learn", "not-measured"]
    page = parse(out / "report.html")
    claims = next(t for t in page.tables if t["id"] == "claims-table")
    assert len(claims["rows"]) == 1 + len(doc["claims"])
    verdicts = [r[0][0] for r in claims["rows"][1:]]
    expected = {True: "holds", False: "does not hold", None: "not computed"}
    assert verdicts == [expected[c["holds"]] for c in doc["claims"]]
    assert doc["claims"][1]["holds"] is False  # accuracy > 2 cannot hold: a failing claim is shown, not dropped
    text = (out / "report.html").read_text()
    assert "listed_but_never_drawn.png" in text and "Run: toy" in text
    with browser() as open_page:
        page, errors = open_page(out / "report.html")
        assert errors == [] and min(image_widths(page)) > 0
        assert page.locator("#claims-table tbody tr").count() == len(doc["claims"])
        failing = sum(c["holds"] is False for c in doc["claims"])
        assert page.locator("#claims-table tbody tr.claim-fails").count() == failing
        page.screenshot(path=str(tmp_path / "toy.png"), full_page=True)
    np.testing.assert_array_equal(population.load(out / "runs" / "toy")["val_accuracy"].values, before)


def test_reproduce_refuses_bad_study_and_scale_before_writing(tmp_path, capsys):
    assert main(["reproduce", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "study = 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "mcmahan", "--scale", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "scale = 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_report_shows_stored_analyses_per_condition(run_dir, tmp_path):
    """Analysis variables as `jaxrnn analyze` stores them (here written by hand into a copy of the
    store): per-condition means in the table, one figure per distance matrix and embedding."""
    from jaxrnn.population import store

    out = tmp_path / "analysed"
    shutil.copytree(run_dir, out)
    ds = population.load(out)
    K = ds.sizes["member"]
    rng = np.random.default_rng(0)
    D = rng.uniform(0, 1, (K, K))
    valid = np.zeros((K, 2, 3), bool)  # member m: 1 + m % 3 valid points at probe 0, one at probe 1
    for m in range(K):
        valid[m, 0, : 1 + m % 3] = True
        valid[m, 1, :1] = True
    ds = ds.assign({"svcca_distance": (("member", "member_b"), (D + D.T) / 2),
                    "svcca_mds": (("member", "mds_axis"), rng.normal(size=(K, 2))),
                    "fp_valid": (("member", "probe", "fp"), valid),
                    "probe_context": (("member", "probe"), np.zeros((K, 2), np.int32)),
                    "integration_decay_time": (("member",), np.arange(K, dtype=np.float32)),
                    "svcca_silhouette": (("analysis_task",), np.array([0.25], np.float32))},
                   ).assign_coords(member_b=ds["member"].values, analysis_task=["rdm"])
    ds.attrs["analysis"] = '{"num_starts": 8}'
    store.save(ds, out)
    assert main(["report", str(out)]) == 0
    page = parse(out / "report.html")
    table = next(t for t in page.tables if [h for h, _ in t["rows"][0]][:3] == ["condition", "members",
                                                                             "valid fixed points per probe"])
    header = [h for h, _ in table["rows"][0]]
    noise = ds["task.noise_std"].values
    for row in table["rows"][1:]:
        members = np.nonzero(noise == (0.1 if "noise_std=0.1" in row[0][0] else 1.0))[0]
        per_probe = [(valid[m, 0].sum() + valid[m, 1].sum()) / 2 for m in members]
        np.testing.assert_allclose(float(row[header.index("valid fixed points per probe")][1]), np.mean(per_probe))
        np.testing.assert_allclose(float(row[header.index("integration_decay_time")][1]), members.mean())
    silhouette = next(t for t in page.tables if t["rows"][0][0][0] == "statistic")
    assert silhouette["rows"][1][0][0] == "svcca_silhouette" and silhouette["rows"][1][1][0] == "0.25"
    text = (out / "report.html").read_text()
    assert 'id="run-0-toy-svcca-distance"' in text and 'id="run-0-toy-svcca-mds"' in text
    assert len(page.images) == 3  # learning curves, the distance matrix, the embedding
