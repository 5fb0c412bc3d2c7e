"""The report's own figures (PNG bytes): learning curves per condition and stored analyses.

Unlike :func:`jaxrnn.plot.plot_learning_curves` (one thin line per member), these summarise a
condition by its median and interquartile band, which stays readable for thousands of members,
and plot every validation metric (accuracy, return, test cost, ...), not only accuracy.
Each function returns ``(png_bytes, caption)``; the caption says what is plotted, from how many
networks, and what a reader should not conclude.
"""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from jaxrnn.report.collect import condition_labels, label, validation_metrics  # noqa: E402

MAX_PANELS = 4


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _colours(n: int):
    return plt.cm.tab10(np.arange(n) % 10) if n <= 10 else plt.cm.viridis(np.linspace(0, 0.95, n))


def _band(ax, x, values, labels, conditions, colours, log=False):
    for colour, condition in zip(colours, conditions):
        rows = np.asarray(values[labels == condition], dtype=float)
        with warnings.catch_warnings():  # all-NaN columns once every member has stopped
            warnings.simplefilter("ignore", RuntimeWarning)
            q25, median, q75 = np.nanpercentile(np.where(np.isfinite(rows), rows, np.nan), [25, 50, 75], axis=0)
        ax.plot(x, median, color=colour, lw=1.8, label=f"{condition} (n = {len(rows)})")
        if len(rows) > 1:
            ax.fill_between(x, q25, q75, color=colour, alpha=0.2, lw=0)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def learning_curves(dataset: xr.Dataset) -> tuple[bytes, str]:
    """Training loss per update and each validation metric per evaluation, per condition."""
    labels = condition_labels(dataset)
    conditions = list(dict.fromkeys(labels))
    colours = _colours(len(conditions))
    metrics = validation_metrics(dataset)[: MAX_PANELS - 1]
    panels = (["loss"] if "loss" in dataset else []) + metrics
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 2.3 * len(panels)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], panels):
        values = np.asarray(dataset[name].values, dtype=float)
        x = dataset["update"].values if name == "loss" else dataset["evaluation_update"].values
        finite = values[np.isfinite(values)]
        wide = bool(len(finite) and finite.min() > 0 and finite.max() > 10 * finite.min())
        _band(ax, x, values, labels, conditions, colours, log=name == "loss" and wide)
        ax.set_ylabel(label(dataset, name) if dataset[name].attrs.get("long_name") else
                      "training loss" if name == "loss" else f"validation {name.removeprefix('val_')}", fontsize=9)
        metric = dataset.attrs.get("stop_metric")
        threshold = dataset.attrs.get("stop_threshold")
        if name == f"val_{metric}" and threshold is not None and np.isfinite(float(threshold)):
            ax.axhline(float(threshold), color="k", ls="--", lw=0.8, label="stopping threshold")
    axes[-1, 0].set_xlabel("update")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{dataset.attrs.get('run_name', 'run')}: {dataset.sizes['member']} members", fontsize=10)
    fig.tight_layout()
    caption = (f"Learning curves of {dataset.sizes['member']} network(s) in {len(conditions)} condition(s): median "
               "over each condition's members (line) and interquartile range (band). A member that met its "
               "stopping criterion is frozen and recorded as missing afterwards, so late points are medians over "
               "the members still training — a falling late curve is not evidence that the early stoppers would "
               "have improved too.")
    return _png(fig), caption


def distance_matrix(dataset: xr.Dataset, name: str) -> tuple[bytes, str]:
    """A ``(member, member_b)`` distance as a heatmap, members ordered by condition."""
    labels = condition_labels(dataset)
    conditions = list(dict.fromkeys(labels))
    order = np.concatenate([np.nonzero(labels == c)[0] for c in conditions])
    D = np.asarray(dataset[name].values, dtype=float)[np.ix_(order, order)]
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    image = ax.imshow(np.ma.masked_invalid(D), cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=name)
    edges = np.cumsum([np.sum(labels == c) for c in conditions])[:-1] - 0.5
    for e in edges:
        ax.axhline(e, color="w", lw=0.6)
        ax.axvline(e, color="w", lw=0.6)
    centres = np.cumsum([0, *[np.sum(labels == c) for c in conditions]])
    ticks = (centres[:-1] + centres[1:]) / 2 - 0.5
    if len(conditions) <= 12:
        ax.set_yticks(ticks, conditions, fontsize=6)
        ax.set_xticks([])
    ax.set_title(name, fontsize=10)
    fig.tight_layout()
    caption = (f"{name} between every pair of the {len(order)} members, ordered by condition (white lines separate "
               "conditions); blank cells are pairs the analysis does not compare (e.g. different tasks). Distances "
               "between untrained or unconverged members are included: compare blocks, not single cells.")
    return _png(fig), caption


def embedding(dataset: xr.Dataset, name: str) -> tuple[bytes, str]:
    """A ``(member, mds_axis)`` embedding as a scatter plot, one colour per condition."""
    labels = condition_labels(dataset)
    conditions = list(dict.fromkeys(labels))
    Y = np.asarray(dataset[name].values, dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for colour, condition in zip(_colours(len(conditions)), conditions):
        points = Y[labels == condition]
        ax.scatter(points[:, 0], points[:, 1], s=16, color=colour, label=f"{condition} (n = {len(points)})")
    ax.set_xlabel(f"{name} axis 1")
    ax.set_ylabel(f"{name} axis 2")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    caption = (f"Two-dimensional MDS embedding {name!r} of the {len(Y)} members (one point each, coloured by "
               "condition). MDS preserves the ranks of distances only approximately: read clusters, not axes.")
    return _png(fig), caption


def analysis_figures(dataset: xr.Dataset) -> list[tuple[str, bytes, str]]:
    """``(title, png, caption)`` for each distance matrix and embedding stored by ``jaxrnn analyze``."""
    out = []
    for name in sorted(dataset.data_vars):
        dims = dataset[name].dims
        values = np.asarray(dataset[name].values, dtype=float)
        if not np.isfinite(values).any():
            continue
        if dims == ("member", "member_b"):
            out.append((name, *distance_matrix(dataset, name)))
        elif dims == ("member", "mds_axis"):
            out.append((name, *embedding(dataset, name)))
    return out
