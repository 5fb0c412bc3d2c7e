"""``jaxrnn report DIR``: one static HTML page a scientist reads in a browser.

    path = write_report("runs/default")                 # -> runs/default/report.html
    path = write_report("reproductions/ger-barak")      # a reproduction: claims table first

For any run directory — one ``jaxrnn run`` (``results.zarr``) or a whole reproduction
(``claims.json``, figures, and its population runs in sub-directories) — the page shows:

- for a reproduction, the claims table of ``claims.json`` (format: :mod:`jaxrnn.studies.claims`),
  one row per claim, the verdict coloured (green holds, red does not hold, grey not computed),
  the claim's figure beside it; then every figure with the study's caption (``FIGURES``);
- for every results store under the directory: the config, devices, wall and compile time,
  a table per condition (members, converged, diverged, updates to criterion, final value of each
  validation metric — :mod:`jaxrnn.report.collect`), learning curves (median and interquartile
  band per condition) and, when ``jaxrnn analyze`` ran, its per-condition summaries, distance
  matrices and embeddings;
- the package versions of each run and of the machine that wrote the report.

The page is self-contained: figures are embedded as PNG data URIs and its only script (sortable
tables) is inline, so it needs no network access and survives being copied on its own. Nothing
in the run directory other than ``report.html`` is written. Importing this package is cheap
(matplotlib and xarray load when a report is built), so the command line can offer
``jaxrnn report`` without slowing other commands.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

REPORT_NAME = "report.html"


def _reproduction(directory: Path, captions: dict[str, str] | None):
    """``(doc, error, figures, captions)`` for a directory with ``claims.json`` (doc None if absent)."""
    from jaxrnn.studies import figure_captions, study_for_command
    from jaxrnn.studies.claims import load_claims

    path = directory / "claims.json"
    if not path.is_file():
        return None, None, {}, dict(captions or {})
    try:
        doc, error = load_claims(path), None
    except (ValueError, json.JSONDecodeError) as exc:
        doc, error = None, f"claims.json does not validate: {exc}"
    if captions is None:
        captions = figure_captions(study_for_command(doc["command"])) if doc else {}
    names = list(captions) + sorted(p.name for p in directory.glob("*.png") if p.name not in captions)
    pngs = {name: (directory / name).read_bytes() for name in names if (directory / name).is_file()}
    return doc, error, pngs, dict(captions)


def _run_section(index: int, run) -> tuple[str, str, str]:
    from jaxrnn.report import figures, page
    from jaxrnn.report.page import esc

    ident = f"run-{index}-{page.anchor(run.name)}"
    state = {True: "complete", False: "incomplete — re-run the same command to resume", None: "unknown (no run.json)"}
    compile_s = ", ".join(f"{t:.1f}" for t in run.compile_time) or "—"
    parts = [f'<section id="{esc(ident)}"><h2>Run: {esc(run.name)}</h2>',
             page.facts([("directory", str(run.path)), ("members", f"{run.members:,}"), ("state", state[run.complete]),
                         ("wall time", "—" if run.wall_time is None else f"{run.wall_time:,.1f} s"),
                         ("compile time per group", f"{compile_s} s"),
                         ("devices", ", ".join(map(str, run.devices)) or "—"), ("stopping rule", run.stop_rule)]),
             "<h3>Per condition</h3>", page.table(run.conditions)]
    png, caption = figures.learning_curves(run.dataset)
    parts.append(page.figure(png, caption, f"{ident}-curves", "Learning curves"))
    if run.analysis is not None or run.analysis_tables:
        parts.append("<h3>Analyses</h3>")
        if run.analysis is not None:
            parts.append('<p class="caption">Stored by <code>jaxrnn analyze</code> with these parameters:</p>'
                         + page.pre_json(run.analysis))
        parts += [page.table(t) for t in run.analysis_tables]
        for title, png, caption in figures.analysis_figures(run.dataset):
            parts.append(page.figure(png, caption, f"{ident}-{page.anchor(title)}", title))
    parts.append(f"<details><summary>Config (TOML)</summary><pre>{esc(run.config)}</pre></details>")
    parts.append("</section>")
    return ident, run.name, "\n".join(parts)


def build_report(directory: str | Path, *, captions: dict[str, str] | None = None) -> str:
    """The report page of ``directory`` as an HTML string (see the module docstring).

    ``captions`` maps figure file names to captions; by default they come from the study module
    named by ``claims.json``'s ``command``. Raises ``ValueError`` if ``directory`` holds neither a
    results store nor a ``claims.json``.
    """
    from jaxrnn import __version__
    from jaxrnn.population.store import package_versions
    from jaxrnn.report import collect, page
    from jaxrnn.report.page import esc

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory = {str(directory)!r} is not allowed: must be a run directory "
                         "(written by `jaxrnn run` or `jaxrnn reproduce`)")
    doc, error, pngs, captions = _reproduction(directory, captions)
    stores = collect.find_stores(directory)
    if doc is None and error is None and not stores:
        raise ValueError(f"directory = {str(directory)!r} is not allowed: must hold a results store "
                         f"({collect.STORE_NAME}) or a claims.json; it holds neither")
    runs = [collect.summarise_run(d, relative_to=directory) for d in stores]
    toc, body = [], []
    if doc is not None:
        title = f"Reproduction: {doc['study']} ({doc['scale']} scale)"
        subtitle = f"{doc['command']} — jaxrnn {doc['jaxrnn_version']}, claims written {doc['created']}"
    else:
        title = f"Run: {runs[0].name}" if len(runs) == 1 else f"Runs in {directory.name}"
        subtitle = f"{sum(r.members for r in runs):,} networks in {len(runs)} run(s)"
    if error:
        body.append(f'<p class="warning">{esc(error)}</p>')
    if doc is not None:
        toc.append(("claims", "Claims"))
        body.append('<section id="claims"><h2>Claims</h2>' + page.verdict_counts(doc)
                    + '<p class="caption">One row per finding of the paper: the statistic computed on our networks, '
                      "the threshold fixed before the run, and the verdict. Click a column header to sort; click a "
                      "figure to see it full size with its caption.</p>"
                    + page.claims_table(doc, pngs, captions) + "</section>")
    if pngs:
        toc.append(("figures", "Figures"))
        missing = [name for name in captions if name not in pngs]
        note = (f'<p class="warning">Listed by the study but not found: {esc(", ".join(missing))}</p>'
                if missing else "")
        gallery = "".join(page.figure(png, captions.get(name, "(no caption: not listed in the study's FIGURES)"),
                                      f"fig-{page.anchor(name)}", name) for name, png in pngs.items())
        body.append(f'<section id="figures"><h2>Figures</h2>{note}<div class="gallery">{gallery}</div></section>')
    for i, run in enumerate(runs):
        ident, name, section = _run_section(i, run)
        toc.append((ident, f"Run: {name}"))
        body.append(section)
    toc.append(("environment", "Environment"))
    versions = {f"run {r.name}": r.versions for r in runs}
    versions["this report"] = package_versions()
    rows = sorted({k for v in versions.values() for k in v})
    env = collect.Table(("package", *versions), tuple(
        (collect.Cell(k, k), *[collect.Cell(str(v.get(k, "—")), str(v.get(k, "—"))) for v in versions.values()])
        for k in rows), "Package versions recorded by each run, and those of the process that wrote this report.")
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    body.append('<section id="environment"><h2>Environment</h2>' + page.table(env, numeric_from=99)
                + f'<p class="meta">Report written {esc(created)} by jaxrnn {esc(__version__)} '
                  f"(<code>jaxrnn report {esc(directory)}</code>).</p></section>")
    return page.page(title, subtitle, toc, body)


def write_report(directory: str | Path, *, out: str | Path | None = None,
                 captions: dict[str, str] | None = None) -> Path:
    """Write the report of ``directory`` to ``out`` (default ``directory/report.html``); returns its path."""
    text = build_report(directory, captions=captions)
    path = Path(out) if out is not None else Path(directory) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["REPORT_NAME", "build_report", "write_report"]
