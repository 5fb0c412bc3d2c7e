"""Learning-curve figures from a results store (matplotlib, Agg backend, PNG).

Members are grouped into *conditions* by every per-member coordinate except ``seed`` and
``group`` (e.g. rule × task × noise); each condition gets one colour: thin lines for its
members, a thick line for the median over members (NaN after a member stopped is ignored).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

EXCLUDED = {"seed", "group", "member"}


def condition_labels(dataset: xr.Dataset) -> list[str]:
    """One label per member built from its condition coordinates, e.g. ``bptt · rdm · noise_std=0.5``."""
    names = [c for c in dataset.coords if dataset[c].dims == ("member",) and c not in EXCLUDED]
    labels = []
    for i in range(dataset.sizes["member"]):
        parts = []
        for name in names:
            value = dataset[name].values[i]
            parts.append(str(value) if name.endswith(".name") else f"{name.split('.')[-1]}={value:g}"
                         if isinstance(value, (float, np.floating)) else f"{name.split('.')[-1]}={value}")
        labels.append(" · ".join(parts))
    return labels


def _curves(ax, x, values, labels, ylabel, log=False):
    conditions = list(dict.fromkeys(labels))
    colours = plt.cm.tab10(np.linspace(0, 1, max(len(conditions), 2)))[: len(conditions)]
    for colour, condition in zip(colours, conditions):
        rows = values[[i for i, lab in enumerate(labels) if lab == condition]]
        for row in rows:
            ax.plot(x, row, color=colour, alpha=0.25, lw=0.7)
        with warnings.catch_warnings():  # all-NaN columns after every member stopped
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(np.where(np.isfinite(rows), rows, np.nan), axis=0)
        ax.plot(x, median, color=colour, lw=2.0, label=condition)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def plot_learning_curves(dataset: xr.Dataset, path: str | Path) -> Path:
    """Loss per update and validation accuracy per evaluation, one colour per condition."""
    labels = condition_labels(dataset)
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    loss = np.asarray(dataset["loss"].values, dtype=float)
    _curves(ax_loss, dataset["update"].values, loss, labels, "training loss", log=bool(np.nanmin(loss, initial=1) > 0))
    if "val_accuracy" in dataset:
        x = dataset["evaluation_update"].values
        _curves(ax_acc, x, np.asarray(dataset["val_accuracy"].values, dtype=float), labels, "validation accuracy")
        stop = dataset.attrs.get("stop_threshold")
        if dataset.attrs.get("stop_metric") == "accuracy" and stop is not None and stop <= 1:
            ax_acc.axhline(stop, color="k", ls="--", lw=0.8)
    ax_acc.set_xlabel("update")
    ax_loss.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{dataset.attrs.get('run_name', 'run')}: {dataset.sizes['member']} members")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_final_accuracy(dataset: xr.Dataset, path: str | Path) -> Path:
    """Last recorded validation accuracy of every member, grouped by condition (strip plot)."""
    labels = condition_labels(dataset)
    acc = np.asarray(dataset["val_accuracy"].values, dtype=float)
    last = np.array([row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in acc])
    conditions = list(dict.fromkeys(labels))
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(conditions)), 4))
    for i, condition in enumerate(conditions):
        values = last[[j for j, lab in enumerate(labels) if lab == condition]]
        ax.scatter(np.full(values.shape, i) + np.linspace(-0.15, 0.15, len(values)), values, s=14)
        ax.plot([i - 0.3, i + 0.3], [np.nanmedian(values)] * 2, color="k")
    ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("final validation accuracy")
    ax.set_ylim(0.4, 1.02)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
