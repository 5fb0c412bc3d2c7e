"""What a report shows, read from a run directory: runs, conditions, analyses, claims, figures.

A *run directory* is what ``jaxrnn run`` writes (``results.zarr``, ``run.json``) or what
``jaxrnn reproduce`` writes (figures, ``claims.json``, and its population runs in
sub-directories). :func:`collect` finds every results store under it and reads only the small
variables (curves, per-member outcomes, analysis summaries), never the params snapshots, so a
report of a large population stays cheap.

Per condition (members that share every per-member coordinate except the seed, as
:func:`jaxrnn.plot.condition_labels`): member count, converged (``converged_update >= 0``),
diverged, updates to criterion (median and range over the converged members), and the final
value of every validation metric — each member's last finite evaluation (a member that stopped at
its criterion keeps its last value), mean ± standard deviation over the condition's members.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

STORE_NAME = "results.zarr"
MEMBER_OUTCOMES = ("converged_update", "diverged", "converged_time")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One table cell: the text shown and the value a sortable column sorts by."""

    text: str
    sort: float | str | None = None


@dataclasses.dataclass(frozen=True)
class Table:
    """A table: header, rows of :class:`Cell`, and a caption saying what it counts."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    notes: tuple[str, ...] = ()  # per-column tooltip (the store's ``description`` attribute)


@dataclasses.dataclass
class RunSummary:
    """One results store, summarised for the report (no params arrays)."""

    name: str
    path: Path  # the run directory, relative to the report's directory where possible
    members: int
    config: str
    devices: list[str]
    versions: dict[str, str]
    wall_time: float | None
    compile_time: list[float]
    complete: bool | None  # run.json's "complete"; None when there is no run.json
    stop_rule: str
    conditions: Table
    dataset: xr.Dataset  # small variables only (curves, outcomes, analysis summaries)
    analysis: dict | None  # the ``analysis`` attribute of ``jaxrnn analyze``, parsed
    analysis_tables: list[Table]


def find_stores(directory: Path) -> list[Path]:
    """Run directories under ``directory`` (itself included) that hold a results store, sorted."""
    directory = Path(directory)
    found = [directory] if (directory / STORE_NAME).is_dir() else []
    found += sorted(p.parent for p in directory.rglob(STORE_NAME)
                    if p.is_dir() and p.parent != directory and STORE_NAME not in p.parent.parts[len(directory.parts):])
    return found


def open_small(run_dir: Path) -> xr.Dataset:
    """The store of ``run_dir`` without its params snapshots, loaded into memory."""
    with xr.open_zarr(Path(run_dir) / STORE_NAME, consolidated=True) as ds:
        keep = [v for v in ds.data_vars if not v.startswith("params.") and v != "fp_x"]
        return ds[keep].load()


def condition_labels(dataset: xr.Dataset) -> np.ndarray:
    from jaxrnn.plot import condition_labels as labels

    return np.asarray(labels(dataset), dtype=object)


def last_finite(values: np.ndarray) -> np.ndarray:
    """Each row's last finite value (NaN for a row with none): ``[members, time] -> [members]``.

    A member that met its stopping criterion is recorded as NaN afterwards; its final value is
    the last one before.

    Example:
        >>> last_finite(np.array([[0.5, 0.8, np.nan], [0.4, 0.6, 0.7], [np.nan, np.nan, np.nan]])).tolist()
        [0.8, 0.7, nan]
    """
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    has = finite.any(axis=1)
    index = values.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    out = values[np.arange(len(values)), index]
    return np.where(has, out, np.nan)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: ``—`` for missing, thousands separators for big integers."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-3:
        return f"{x:.{digits}g}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:,.{max(digits - int(math.log10(abs(x))) - 1, 0)}f}"


def _mean_sd(values: np.ndarray) -> Cell:
    values = values[np.isfinite(values)]
    if not len(values):
        return Cell("—", None)
    mean = float(np.mean(values))
    text = fmt(mean) if len(values) == 1 else f"{fmt(mean)} ± {fmt(float(np.std(values)), 2)}"
    return Cell(text, mean)


def label(dataset: xr.Dataset, name: str) -> str:
    """A variable's ``long_name`` attribute (the store describes its variables), else its name."""
    return str(dataset[name].attrs.get("long_name") or name) if name in dataset.variables else name


def description(dataset: xr.Dataset, name: str) -> str:
    return str(dataset[name].attrs.get("description", "")) if name in dataset.variables else ""


def validation_metrics(dataset: xr.Dataset) -> list[str]:
    """The ``val_*`` variables over ``(member, evaluation)``, the stopping metric first.

    ``val_neg_<x>`` is left out when ``val_<x>`` is there (a rule reports the negated cost as a
    score to maximise; showing both says the same thing twice).
    """
    names = [v for v in dataset.data_vars if v.startswith("val_") and dataset[v].dims == ("member", "evaluation")]
    names = [v for v in names if not (v.startswith("val_neg_") and "val_" + v[len("val_neg_"):] in names)]
    stop = f"val_{dataset.attrs.get('stop_metric', '')}"
    return sorted(names, key=lambda v: (v != stop, v))


def has_criterion(dataset: xr.Dataset) -> bool:
    """Whether the run had a stopping criterion (a finite ``stop_threshold`` on a metric)."""
    threshold = _float(dataset.attrs.get("stop_threshold"))
    return dataset.attrs.get("stop_metric") is not None and threshold is not None


def stop_rule(dataset: xr.Dataset) -> str:
    metric, threshold = dataset.attrs.get("stop_metric"), dataset.attrs.get("stop_threshold")
    window = dataset.attrs.get("stop_window")
    if not has_criterion(dataset):
        return "no early stopping: every member trains for its whole budget"
    return (f"a member has met its criterion (and stops) when the minimum of its last {window} validation "
            f"{metric} values is ≥ {fmt(float(threshold))}")


def condition_table(dataset: xr.Dataset) -> Table:
    """One row per condition: members, converged, diverged, updates to criterion, final metrics."""
    labels = condition_labels(dataset)
    converged = (np.asarray(dataset["converged_update"].values)
                 if "converged_update" in dataset and has_criterion(dataset) else None)
    diverged = np.asarray(dataset["diverged"].values, bool) if "diverged" in dataset else None
    metrics = validation_metrics(dataset)
    finals = {m: last_finite(dataset[m].values) for m in metrics}
    if "loss" in dataset:
        finals["loss"] = last_finite(dataset["loss"].values)
    header = ("condition", "members", "converged", "diverged", "updates to criterion") + tuple(
        "final loss (training)" if m == "loss" else f"final {m.removeprefix('val_')} (validation)" for m in finals)
    notes = ("", "", description(dataset, "converged_update"), description(dataset, "diverged"), "") + tuple(
        description(dataset, m) for m in finals)
    rows = []
    for condition in dict.fromkeys(labels):
        idx = labels == condition
        n = int(idx.sum())
        row = [Cell(str(condition), str(condition)), Cell(str(n), n)]
        if converged is not None:
            hits = converged[idx][converged[idx] >= 0]
            row.append(Cell(f"{len(hits)} ({100 * len(hits) / n:.0f} %)", len(hits) / n))
            if len(hits):
                lo, hi = int(hits.min()), int(hits.max())
                span = f" [{lo:,}–{hi:,}]" if lo != hi else ""
                row.append(Cell(f"{np.median(hits):,.0f}{span}", float(np.median(hits))))
            else:
                row.append(Cell("never", math.inf))
        else:  # no stopping criterion: "converged" has no meaning
            row += [Cell("— (no criterion)"), Cell("—")]
        if diverged is not None:
            d = int(diverged[idx].sum())
            row.insert(3, Cell(str(d), d))
        else:
            row.insert(3, Cell("—"))
        row += [_mean_sd(values[idx]) for values in finals.values()]
        rows.append(tuple(row))
    caption = ("One row per condition (members sharing every swept field, seeds pooled). Converged: members "
               "that met the stopping criterion; updates to criterion: median [min–max] over those members. "
               "Final metrics: each member's last finite value, mean ± standard deviation over the condition.")
    return Table(header, tuple(rows), caption, notes)


def analysis_tables(dataset: xr.Dataset) -> list[Table]:
    """Per-condition summaries of the analyses stored by ``jaxrnn analyze`` (empty if none ran)."""
    labels = condition_labels(dataset)
    tables = []
    columns = {}
    if "fp_valid" in dataset:
        valid = np.asarray(dataset["fp_valid"].values, bool)  # [member, probe, fp]
        context = np.asarray(dataset["probe_context"].values) if "probe_context" in dataset else None
        real = context >= 0 if context is not None else np.ones(valid.shape[:2], bool)
        counts = valid.sum(axis=2).astype(float)
        counts[~real] = np.nan
        columns["valid fixed points per probe"] = np.nanmean(counts, axis=1)
        if "fp_stable" in dataset:
            stable = (np.asarray(dataset["fp_stable"].values, bool) & valid).sum(axis=2).astype(float)
            stable[~real] = np.nan
            columns["stable fixed points per probe"] = np.nanmean(stable, axis=1)
    for name in sorted(dataset.data_vars):
        var = dataset[name]
        if (var.dims == ("member",) and name not in MEMBER_OUTCOMES and np.issubdtype(var.dtype, np.number)
                and not np.issubdtype(var.dtype, np.bool_)):
            columns[name] = np.where(np.asarray(var.values) == -1, np.nan, np.asarray(var.values, float)) \
                if np.issubdtype(var.dtype, np.integer) else np.asarray(var.values, float)
    if columns:
        rows = []
        for condition in dict.fromkeys(labels):
            idx = labels == condition
            rows.append((Cell(str(condition), str(condition)), Cell(str(int(idx.sum())), int(idx.sum())),
                         *[_mean_sd(values[idx]) for values in columns.values()]))
        tables.append(Table(("condition", "members", *[label(dataset, c) for c in columns]), tuple(rows),
                            "Per-member analysis results, mean ± standard deviation over each condition's members "
                            "(integer codes such as a class label are averaged as numbers; −1 = not computed is left out).",
                            ("", "", *[description(dataset, c) for c in columns])))
    per_task = [v for v in dataset.data_vars if dataset[v].dims == ("analysis_task",)]
    if per_task:
        tasks = [str(t) for t in dataset["analysis_task"].values]
        rows = tuple((Cell(name, name), *[Cell(fmt(float(v)), float(v)) for v in dataset[name].values])
                     for name in per_task)
        tables.append(Table(("statistic", *tasks), rows, "Per-task statistics (e.g. silhouette scores of the "
                                                          "rules' clusters in each distance)."))
    return tables


def summarise_run(run_dir: Path, relative_to: Path | None = None) -> RunSummary:
    """Read ``run_dir``'s store (and ``run.json``) into a :class:`RunSummary`."""
    run_dir = Path(run_dir)
    dataset = open_small(run_dir)
    attrs = dataset.attrs
    complete = None
    if (run_dir / "run.json").is_file():
        try:
            complete = bool(json.loads((run_dir / "run.json").read_text()).get("complete"))
        except (json.JSONDecodeError, AttributeError):
            complete = None
    shown = run_dir
    if relative_to is not None and run_dir != relative_to:
        try:
            shown = run_dir.relative_to(relative_to)
        except ValueError:
            pass
    analysis = None
    if "analysis" in attrs:
        try:
            analysis = json.loads(attrs["analysis"])
        except (TypeError, json.JSONDecodeError):
            analysis = {"parameters": str(attrs["analysis"])}
    return RunSummary(
        name=str(attrs.get("run_name", run_dir.name)), path=shown, members=int(dataset.sizes["member"]),
        config=str(attrs.get("config", "")), devices=_json(attrs.get("devices"), []),
        versions=_json(attrs.get("versions"), {}), wall_time=_float(attrs.get("wall_time")),
        compile_time=[float(x) for x in _json(attrs.get("compile_time"), [])], complete=complete,
        stop_rule=stop_rule(dataset), conditions=condition_table(dataset), dataset=dataset, analysis=analysis,
        analysis_tables=analysis_tables(dataset))


def _json(text, default):
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return default


def _float(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
