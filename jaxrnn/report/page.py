"""HTML of the report: one static page, figures embedded as data URIs, no network access needed.

Plain HTML and CSS with a few lines of vanilla JavaScript that make tables sortable (click a
column header; numbers sort by value, not by text). Every string from a store or a claims file
is escaped. The page loads nothing from the network: it can be mailed, archived, or opened
from a laptop on a train.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
from collections.abc import Iterable

from jaxrnn.report.collect import Cell, Table, fmt

CSS = """
:root { --fg: #1d2430; --muted: #5b6472; --line: #d8dde5; --band: #f5f7fa; --accent: #2b5fb3; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0; padding: 0 1.5rem 3rem; max-width: 1440px; margin-inline: auto; }
header { border-bottom: 2px solid var(--line); padding: 1.2rem 0 0.6rem; }
h1 { font-size: 1.6rem; margin: 0 0 0.3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.meta, .caption, figcaption { color: var(--muted); font-size: 0.88rem; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; padding: 0; list-style: none; margin: 0.6rem 0; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.86rem; width: 100%; }
th, td { border: 1px solid var(--line); padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: var(--band); position: sticky; top: 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; font-size: 0.7em; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; font-size: 0.7em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fbfcfd; }
.verdict { font-weight: 600; padding: 0.1rem 0.45rem; border-radius: 0.3rem; white-space: nowrap; }
.holds { background: #d9f2de; color: #185c27; }
.fails { background: #fbdedd; color: #8c1c18; }
.na { background: #e8eaee; color: #444b57; }
tr.claim-holds td:first-child { border-left: 4px solid #2e8b47; }
tr.claim-fails td:first-child { border-left: 4px solid #c0392b; }
tr.claim-na td:first-child { border-left: 4px solid #9aa1ad; }
.wide { overflow-x: auto; }
table.claims td.text { min-width: 15em; }
table.claims td.note { min-width: 10em; }
td.fig { width: 290px; }
td.fig img { max-width: 280px; max-height: 240px; width: auto; height: auto; display: block;
             border: 1px solid var(--line); }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem 1.6rem; }
pre { background: var(--band); border: 1px solid var(--line); padding: 0.6rem; overflow-x: auto; font-size: 0.82rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; font-size: 0.9rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.warning { background: #fff4d6; border: 1px solid #e5c55a; padding: 0.5rem 0.8rem; border-radius: 0.3rem; }
.score { font-size: 1.05rem; }
"""

SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
        var x = Number(v);
        return v !== "" && !isNaN(x) ? [0, x] : [v === "" ? 2 : 1, v];
      }
      rows.sort(function (a, b) {
        var ka = key(a), kb = key(b);
        var order = ka[0] - kb[0] || (ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

VERDICT = {True: ("holds", "holds"), False: ("fails", "does not hold"), None: ("na", "not computed")}


def esc(text) -> str:
    return html.escape(str(text), quote=True)


@functools.lru_cache(maxsize=32)
def data_uri(png: bytes, max_width: int | None = None) -> str:
    """``data:image/png;base64,...`` of ``png``, first shrunk to ``max_width`` pixels if wider.

    Cached: the claims table shows a figure once per claim that cites it (the shrinking is the cost).
    """
    if max_width is not None:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as image:
            if image.width > max_width:
                height = round(image.height * max_width / image.width)
                buffer = io.BytesIO()
                image.convert("RGBA").resize((max_width, height), Image.LANCZOS).save(buffer, format="PNG",
                                                                                     optimize=True)
                png = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text)).strip("-").lower() or "x"


def _sort_attr(value) -> str:
    """``data-v`` for sorting: a number JavaScript's ``Number()`` parses, text, or empty (missing: last)."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)) and not isinstance(value, bool):
        value = float(value)
        if value != value:
            return ' data-v=""'
        return f' data-v="{"Infinity" if value == float("inf") else "-Infinity" if value == -float("inf") else repr(value)}"'
    return f' data-v="{esc(value)}"'


def table(t: Table, cls: str = "sortable", numeric_from: int = 1) -> str:
    notes = tuple(t.notes) + ("",) * (len(t.header) - len(t.notes))
    head = "".join(f'<th scope="col"' + (f' title="{esc(n)}"' if n else "") + f">{esc(h)}</th>"
                   for h, n in zip(t.header, notes))
    body = []
    for row in t.rows:
        cells = []
        for i, cell in enumerate(row):
            kind = ' class="num"' if i >= numeric_from and isinstance(cell.sort, (int, float)) else ""
            cells.append(f"<td{kind}{_sort_attr(cell.sort)}>{esc(cell.text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f'<p class="caption">{esc(t.caption)}</p>' if t.caption else ""
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{caption}'


def figure(png: bytes, caption: str, ident: str, title: str = "") -> str:
    label = f"<strong>{esc(title)}.</strong> " if title else ""
    return (f'<figure id="{esc(ident)}"><img src="{data_uri(png)}" alt="{esc(title or ident)}">'
            f"<figcaption>{label}{esc(caption)}</figcaption></figure>")


def facts(items: Iterable[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def claims_table(doc: dict, figures: dict[str, bytes], captions: dict[str, str]) -> str:
    """The claims of a reproduction: one row per claim, verdict coloured, its figure beside it.

    Columns: verdict · claim (id, section, what the paper says) · test (the statistic and the
    threshold fixed before the run) · value · n · p · baseline · note · figure.
    """
    head = ("verdict", "claim", "test", "value", "n", "p", "baseline", "note", "figure")
    rows = []
    for c in doc["claims"]:
        cls, word = VERDICT[c["holds"]]
        baseline = "; ".join(f"{k}: {fmt(v)}" for k, v in (c.get("baseline") or {}).items()) or "—"
        name = c["figure"]
        if name and name in figures:
            cap = captions.get(name, "")
            fig = (f'<a href="#fig-{anchor(name)}"><img src="{data_uri(figures[name], 600)}" alt="{esc(name)}" '
                   f'title="{esc(cap)}"></a><span class="caption">{esc(name)} (full size and caption below)</span>')
        elif name:
            fig = f'<span class="caption">{esc(name)} (not found beside claims.json)</span>'
        else:
            fig = '<span class="caption">—</span>'
        value = c["value"]
        claim = (f'<strong>{esc(c["id"])}</strong> <span class="caption">({esc(c["section"])})</span><br>'
                 f'{esc(c["paper"])}')
        test = f'{esc(c["statistic"])}<br><span class="caption">threshold: {esc(c["threshold"])}</span>'
        cells = [f'<td data-v="{esc(word)}"><span class="verdict {cls}">{esc(word)}</span></td>',
                 f'<td class="text" data-v="{esc(c["id"])}">{claim}</td>', f'<td class="text">{test}</td>',
                 f'<td class="num"{_sort_attr(None if value is None else float(value))}>{esc(fmt(value, 4))}</td>',
                 f'<td class="num"{_sort_attr(None if c["n"] is None else float(c["n"]))}>{esc(fmt(c["n"]))}</td>',
                 f'<td class="num"{_sort_attr(None if c["p_value"] is None else float(c["p_value"]))}>'
                 f"{esc(fmt(c['p_value']))}</td>",
                 f"<td>{esc(baseline)}</td>", f'<td class="note">{esc(c["note"])}</td>', f'<td class="fig">{fig}</td>']
        rows.append(f'<tr class="claim-{cls}" id="claim-{anchor(c["id"])}">' + "".join(cells) + "</tr>")
    header = "".join(f'<th scope="col">{esc(h)}</th>' for h in head)
    return (f'<div class="wide"><table class="sortable claims" id="claims-table"><thead><tr>{header}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def verdict_counts(doc: dict) -> str:
    held = sum(c["holds"] is True for c in doc["claims"])
    failed = sum(c["holds"] is False for c in doc["claims"])
    missing = sum(c["holds"] is None for c in doc["claims"])
    return (f'<p class="score"><span class="verdict holds">{held} hold</span> '
            f'<span class="verdict fails">{failed} do not hold</span> '
            f'<span class="verdict na">{missing} not computed</span> of {len(doc["claims"])} claims.</p>')


def page(title: str, subtitle: str, toc: list[tuple[str, str]], body: list[str]) -> str:
    nav = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in toc)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p class=\"meta\">{esc(subtitle)}</p><nav><ul>{nav}</ul></nav></header>"
            + "\n".join(body) + f"<script>{SORT_JS}</script></body></html>\n")


def pre_json(value) -> str:
    return f"<pre>{esc(json.dumps(value, indent=1))}</pre>"


__all__ = ["Cell", "Table", "claims_table", "data_uri", "esc", "facts", "figure", "page", "table"]
