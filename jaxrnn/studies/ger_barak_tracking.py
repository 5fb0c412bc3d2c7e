"""Fig. 6 of the Ger & Barak (NeurIPS 2025) reproduction: the 2-D multi-frequency tracking task.

Drawn from ``res["tracking"]`` and ``res["tracking_open"]`` of :func:`jaxrnn.studies.ger_barak.analyse`
(probe errors per snapshot from :func:`~jaxrnn.studies.ger_barak_analysis.probe_errors`). A
frequency counts as *acquired* at the first snapshot whose probe error is below half the error of
doing nothing (:func:`~jaxrnn.studies.ger_barak_analysis.acquisition_updates`). The title says
which of the four frequencies the run acquired, so a default-scale figure is not read as the
paper's full staircase.
"""

from __future__ import annotations

import numpy as np

from jaxrnn.studies import ger_barak_analysis as an
from jaxrnn.studies.ger_barak_figures import plt, save

LEVEL = 0.5  # probe error (relative to no control) below which a frequency counts as acquired


def _names():
    return [f"{axis} {f:g} Hz (ω = {2 * np.pi * f:.2f})" for axis, f in an.probe_frequencies()]


def _acquisition_text(acquired, num_updates: int) -> str:
    probes = an.probe_frequencies()
    order = np.argsort([f for _, f in probes])
    done = [f"{probes[i][0]} {probes[i][1]:g} Hz (update {acquired[i]})" for i in order if acquired[i] >= 0]
    missing = [f"{probes[i][0]} {probes[i][1]:g} Hz" for i in order if acquired[i] < 0]
    text = f"acquired within {num_updates} updates: " + (", ".join(done) if done else "none")
    if missing:
        text += "; not acquired: " + ", ".join(missing)
    return text


def _crossover(ax, tr, colours, names):
    """The two lowest frequencies around the second one's acquisition (Fig. 6e)."""
    probes, acquired = an.probe_frequencies(), tr["acquired"]
    first, second = np.argsort([f for _, f in probes])[:2]
    snaps, errors = tr["snapshot_update"], tr["errors"]
    if acquired[first] >= 0 and acquired[second] >= 0:
        # from the first frequency's acquisition (the update-0 errors, 10-30x no control, would squash
        # the axis) to as far past the second's
        lo, hi = acquired[first], acquired[second] + (acquired[second] - acquired[first])
        window = (snaps >= lo) & (snaps <= hi)
        ax.set_title(f"crossover: from the acquisition of {names[first].split(' (')[0]} past that of "
                     f"{names[second].split(' (')[0]} (linear axis, zoomed)", fontsize=9)
    else:
        window = snaps >= snaps[min(1, len(snaps) - 1)]
        ax.set_title("crossover: the second frequency was not acquired in this run", fontsize=9)
    for i in (first, second):
        ax.plot(snaps[window], errors[window, i], ".-", ms=3, color=colours[i], label=names[i])
        if acquired[i] >= 0:
            ax.axvline(acquired[i], color=colours[i], ls="--", lw=0.8)
    ax.axhline(LEVEL, color="k", lw=0.5, ls=":")
    shown = errors[window][:, [first, second]]
    ax.set(xlabel="update", ylabel="probe error / no control",
           ylim=(0, min(1.2 * float(np.max(shown)), 1.5) if shown.size else 1.5))
    ax.legend(fontsize=7)


def fig6(res: dict, out, scale: str, quiet: bool = False) -> None:
    tr, to = res["tracking"], res["tracking_open"]
    snaps, errors, acquired = tr["snapshot_update"], tr["errors"], tr["acquired"]
    names, colours = _names(), plt.cm.tab10(np.arange(4))
    freqs = np.array([f for _, f in an.probe_frequencies()])
    fig, axes = plt.subplot_mosaic([["a", "b", "c"], ["d", "e", "e"]], figsize=(17, 9.5), layout="constrained")
    a, b, c, d, e = (axes[k] for k in "abcde")
    a.semilogy(tr["update"], tr["loss"], lw=0.6, color="k")
    for colour, name, acq in zip(colours, names, acquired):
        if acq >= 0:
            a.axvline(acq, color=colour, ls="--", label=f"{name}: acquired at {acq}")
    a.set(xlabel="update", ylabel="training loss (tracking error)", title="closed loop", xlim=(0, tr["update"][-1]))
    for colour, err, name in zip(colours, errors.T, names):
        b.semilogy(snaps, err, color=colour, label=name)
    b.axhline(LEVEL, color="k", lw=0.5, ls=":")
    b.set(xlabel="update", ylabel="probe error / error without control (8 phases)",
          title="single-frequency probes, closed-loop network")
    W = tr["W_rec"]
    eigs = an.sorted_eigvals(W - np.eye(W.shape[-1]))
    c.scatter(np.repeat(snaps, eigs.shape[1]), np.abs(eigs.imag).ravel(), s=1, c="0.4")
    for colour, f in zip(colours, freqs):
        c.axhline(2 * np.pi * f, color=colour, lw=1)
    c.set(xlabel="update", ylabel="|Im λ(W_rec − I)| (rad/s, τ = 1)", ylim=(-0.05, 3.2),
          title="spectrum of W_rec − I; lines: target ω")
    d.semilogy(tr["evaluation_update"], tr["test_cost"], color="tab:blue", label="closed loop")
    d.semilogy(to["evaluation_update"], to["test_cost"], color="tab:red",
               label="open-loop student (teacher-driven plant)")
    d.set(xlabel="update", ylabel="closed-loop test loss (10 references)", title="closed vs open loop")
    _crossover(e, tr, colours, names)
    for ax in (a, b, d):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    n = int(tr["update"][-1])
    scale_note = ("the paper's scale: 5,000 updates at batch 100" if scale == "full" else
                  f"{scale} scale: the paper needs ≈ 230 / 1,200 / 2,600 / 4,500 updates for the four "
                  "frequencies; --full runs 5,000")
    save(fig, out, "fig6_tracking.png", "Fig. 6: 2-D multi-frequency tracking (linear CTRNN N = 100, Adam), "
         f"one network — {_acquisition_text(acquired, n)}\n{scale_note}", quiet)
