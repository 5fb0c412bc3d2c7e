"""The claims table of the Ger & Barak (NeurIPS 2025) reproduction: one row per finding.

Every statistic and threshold below was fixed before the reproduction was run at any scale (the
stage detector's definition is in :mod:`jaxrnn.analysis.stages`); a finding that does not hold is
reported as not holding. Conventions: ``b₁`` = end of stage 1, ``s₃`` = stabilisation (first
update after which ``ρ(P) < 1`` for good); "tanh run" = the closed-loop controller with
reg_u = 0.005 (the authors' run), "rank-1 run" = their rank-1 linear model at T = 50. Statistics
over seeds are medians (every seed for "in every seed"); ``n`` counts seeds unless it says
otherwise. Numbers are log10 where a loss slope is compared.
"""

from __future__ import annotations

import numpy as np

from jaxrnn.analysis import control as ct
from jaxrnn.analysis.stats import spearman
from jaxrnn.studies import ger_barak_analysis as an
from jaxrnn.studies.claims import Claim, decide

WINDOW = 20  # updates before / after stabilisation compared in "plateau ends at stabilisation"


def _stage2_slope_ratio(st) -> float | None:
    fit = st.knee_fit
    if fit is None or fit.slopes[0] >= 0:
        return None
    return float(fit.slopes[1] / fit.slopes[0])


def _descent_change(loss, s3: int) -> float | None:
    """log10 fall over the WINDOW updates after ``s₃`` minus that over the WINDOW before (line fits)."""
    if s3 < WINDOW or s3 + WINDOW > len(loss):
        return None
    y = np.log10(np.asarray(loss, np.float64))
    slope = lambda a, b: np.polyfit(np.arange(a, b), y[a:b], 1)[0]  # noqa: E731
    return float(WINDOW * (slope(s3 - WINDOW, s3) - slope(s3, s3 + WINDOW)))


def _median(values):
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _outlier_ratio(W) -> tuple[float, float]:
    """``(|λ_outlier| / max |λ_bulk|, max |λ_bulk|)``; the outlier is λ₁ (with its conjugate if complex)."""
    eig = an.eigvals(W)
    eig = eig[np.argsort(-np.abs(eig))]
    k = 2 if abs(eig[0].imag) > 1e-9 * abs(eig[0]) else 1
    return float(abs(eig[0]) / abs(eig[k])), float(abs(eig[k]))


def _quality(k) -> float:
    """``|arg λ| / |ln|λ||`` of ``[[1, 1], [k1, 1 + k2]]``: oscillation per e-fold of decay (0 if real)."""
    lam = np.linalg.eigvals(np.array([[1.0, 1.0], [k[0], 1.0 + k[1]]]))[0]
    return float(abs(np.angle(lam)) / abs(np.log(abs(lam)))) if abs(lam.imag) > 1e-12 else 0.0


def _spearman(x, y) -> float | None:
    """Spearman's rank correlation (``jaxrnn.analysis.stats.spearman``); None for < 3 points or a constant side."""
    if len(x) < 3:
        return None
    value = float(spearman(np.asarray(x, np.float32), np.asarray(y, np.float32)))
    return value if np.isfinite(value) else None


def claims(res: dict) -> list[Claim]:
    """The rows (see the module docstring for the conventions)."""
    seeds, rows = res["seeds"], []
    n = len(seeds)
    closed, opened, rank1 = res["closed"], res["open"], res["rank1"]

    # --- Fig. 1c -----------------------------------------------------------------------------
    lengths, ratios, ok = [], [], []
    for s in seeds:
        st = closed[s]["stages"]
        length = (st.stage3_start if st.stage3_start >= 0 else len(closed[s]["loss"])) - st.stage1_end
        ratio = _stage2_slope_ratio(st)
        lengths.append(length)
        ratios.append(ratio)
        ok.append(length >= 20 and ratio is not None and ratio < 0.1)
    rows.append(Claim(
        "closed-loop-plateau", "3, Fig. 1c", "fig1c_test_loss.png",
        "After a similar initial improvement the closed-loop RNN quickly enters a loss plateau",
        "length of stage 2 (b1 to s3, updates) of the tanh run; slope of log L fitted on stage 2 over stage 1's",
        float(np.median(lengths)), ">= 20 updates with the stage-2 slope under 1/10 of stage 1's, in every seed", n,
        all(ok), note="; ".join(f"seed {s}: b1 = {closed[s]['stages'].stage1_end}, s3 = "
                                f"{closed[s]['stages'].stage3_start}, slope ratio = "
                                f"{'n/a' if r is None else f'{r:.3f}'}" for s, r in zip(seeds, ratios))))

    spikes = [float(np.max(opened[s]["test_cost"]) / opened[s]["test_cost"][0]) for s in seeds]
    closed_rise = [float(np.max(closed[s]["test_cost"][1:]) / closed[s]["test_cost"][0]) for s in seeds]
    recover = [float(opened[s]["test_cost"][-1] / np.max(opened[s]["test_cost"])) for s in seeds]
    rows.append(Claim(
        "open-loop-test-spike", "3, Fig. 1c", "fig1c_test_loss.png",
        "The open-loop student's closed-loop test loss shows a sharp peak (then recovers)",
        "max over training of the open-loop student's closed-loop test cost / its value at update 0",
        float(np.median(spikes)), "> 2 (median over seeds)", n, decide(float(np.median(spikes)), above=2.0),
        baseline={"closed-loop run, max after update 0 / update 0": float(np.median(closed_rise))},
        note="final / peak test cost of the student: " + ", ".join(f"{r:.3g}" for r in recover)))

    # --- Fig. 2 ------------------------------------------------------------------------------
    ends, apart = [], []
    for s in seeds:
        kc, ko = closed[s]["gains"], opened[s]["gains"]
        scale = np.linalg.norm(kc[-1] - kc[0])
        ends.append(float(np.linalg.norm(ko[-1] - kc[-1]) / scale))
        m = min(len(kc), len(ko))
        apart.append(float(np.max(np.linalg.norm(ko[:m] - kc[:m], axis=1)) / scale))
    rows.append(Claim(
        "same-endpoint", "3, Fig. 2b", "fig2_feedback_gains.png",
        "Closed- and open-loop training converge to the same final solution",
        "distance of the final effective gains (k1, k2), open vs closed loop, over the closed-loop path's "
        "start-to-end distance",
        float(np.median(ends)), "< 0.2", n, decide(float(np.median(ends)), below=0.2)))
    rows.append(Claim(
        "paths-differ", "3, Fig. 2b", "fig2_feedback_gains.png",
        "The two RNNs follow distinct trajectories in the (k1, k2) plane",
        "largest distance between the open- and closed-loop (k1, k2) at the same update, over the same scale",
        float(np.median(apart)), "> 0.5", n, decide(float(np.median(apart)), above=0.5)))

    gaps = [abs(closed[s]["entry"] - closed[s]["stages"].stage3_start) if min(
        closed[s]["entry"], closed[s]["stages"].stage3_start) >= 0 else None for s in seeds]
    rows.append(Claim(
        "stable-gains-at-stabilisation", "3, Fig. 2c", "fig2_feedback_gains.png",
        "The end of the plateau coincides with the (k1, k2) path entering the stable region",
        "|update the tanh run's gains enter the exact stable region for good - s3 of the joint map|, max over seeds",
        None if None in gaps else float(max(gaps)), "<= 5 updates", n,
        None if None in gaps else max(gaps) <= 5,
        note="; ".join(f"seed {s}: gains enter at {closed[s]['entry']}, s3 = {closed[s]['stages'].stage3_start}"
                       for s in seeds) + ("" if None not in gaps else "; a run never stabilised")))

    # --- Fig. 3 ------------------------------------------------------------------------------
    sig_end = [float(rank1[s]["sig"][rank1[s]["stages"].stage1_end, 0]) for s in seeds]
    rows.append(Claim(
        "sigma-zm-small-negative", "4.2 Stage 1, Fig. 3e", "fig3_stage1.png",
        "Stage 1 drives the input-output overlap sigma_zm to small negative values",
        "sigma_zm = z.m of the rank-1 run at the end of stage 1 (b1)", _median(sig_end), "-0.1 < value < 0", n,
        decide(_median(sig_end), above=-0.1, below=0.0),
        baseline={"update 0": _median([float(rank1[s]["sig"][0, 0]) for s in seeds])}))
    f3 = res.get("fig3")
    if f3 is not None:
        rows.append(Claim(
            "stage1-closed-form", "4.2 Stage 1, Fig. 3d", "fig3_stage1.png",
            "The closed-form stage-1 loss 1/2(1 - r^T)/(1 - r), r = |1 + sqrt(sigma_zm)|^2, agrees excellently "
            "with the empirical loss",
            "median |closed form - rollout| / rollout (reduced system, x0 = (1, -1), T = 101) over the sigma_zm "
            "values of the rank-1 run's stage-1 and stage-2 snapshots",
            f3["median_rel_error_trained"], "< 0.25", len(f3["trained_sig"]),
            decide(f3["median_rel_error_trained"], below=0.25),
            baseline={"median over sigma_zm in [-0.3, 0.12]": f3["median_rel_error_grid"]},
            note="n counts snapshots; the paper's own formula (App. C.5), evaluated as printed"))

    # --- Fig. 4 ------------------------------------------------------------------------------
    fractions, falls = [], []
    for s in seeds:
        st, eigs = rank1[s]["stages"], rank1[s]["eigs"]
        end = st.stage3_start if st.stage3_start >= 0 else len(rank1[s]["loss"])
        top = eigs[st.stage1_end:end, 0]
        fractions.append(float(np.mean(np.abs(top.imag) > 1e-9)) if top.size else None)
        falls.append(bool(top.size > 1 and abs(top[-1]) < abs(top[0])))
    value = None if None in fractions else float(min(fractions))
    rows.append(Claim(
        "stage2-complex-pair", "4.2 Stage 2, Fig. 4c", "fig4_eigenvalues.png",
        "During the plateau the dominant eigenvalues of P are a complex pair that moves into the unit disk",
        "fraction of stage-2 snapshots of the rank-1 run whose dominant eigenvalue is complex (min over seeds)",
        value, ">= 0.9, and rho(P) lower at the end of stage 2 than at its start, in every seed", n,
        None if value is None else (value >= 0.9 and all(falls))))
    changes = []
    for s in seeds:
        for key, run in (("tanh", closed[s]), ("rank-1", rank1[s])):
            changes.append(_descent_change(run["loss"], run["stages"].stage3_start))
    rows.append(Claim(
        "plateau-ends-at-stabilisation", "4.2 Stage 2, Fig. 4a", "fig4_eigenvalues.png",
        "The plateau ends when the dominant eigenvalues enter the unit disk (the loss drops again)",
        f"log10 loss fall over the {WINDOW} updates after s3 minus over the {WINDOW} before (line fits), "
        "min over the tanh and rank-1 runs",
        None if None in changes else float(min(changes)), "> 0.1", 2 * n,
        None if None in changes else min(changes) > 0.1,
        note="n counts runs" + ("" if None not in changes else f"; a run stabilised within {WINDOW} updates of "
                               "either end, or never")))
    sw = res["sweep"]
    pair = np.stack([an.pair_eigenvalue(e) for e in sw["eigs"]])
    d_imag = pair[:, -1].imag - pair[:, 0].imag
    rho_T = _spearman(sw["T"], d_imag)
    rows.append(Claim(
        "episode-length-direction", "4.2 Stage 2, Fig. 4e", "fig4_eigenvalues.png",
        "Shorter episodes push the dominant eigenvalue up (away from the real axis), longer ones down",
        f"Spearman correlation of T with the change of Im(lambda) of the pair over {len(pair[0]) - 1} updates "
        f"from update {sw['start']} of the rank-1 run",
        rho_T, "< -0.75, with Im rising for the shortest T and falling for the longest", len(sw["T"]),
        None if rho_T is None else bool(rho_T < -0.75 and d_imag[0] > 0 and d_imag[-1] < 0),
        note="n counts T values; change of Im(lambda): " + ", ".join(
            f"T={T}: {d:+.4f}" for T, d in zip(sw["T"], d_imag))))

    # --- Fig. 5 ------------------------------------------------------------------------------
    growth = []
    for s in seeds:
        s3 = rank1[s]["stages"].stage3_start
        lam3, _ = an.third_eigenvalue(rank1[s]["eigs"], rank1[s]["sig"][:, 3])
        growth.append(None if s3 < 0 else float(lam3[-1] - lam3[s3]))
    rows.append(Claim(
        "lambda3-grows", "4.2 Stage 3, Fig. 5c", "fig5_third_eigenvalue.png",
        "In stage 3 the third, real eigenvalue of P grows: a second slow mode",
        "lambda3 at the last snapshot minus lambda3 at s3, rank-1 run", _median(growth), "> 0.1", n,
        decide(_median(growth), above=0.1),
        note="" if None not in growth else "a run never stabilised"))

    # --- Fig. 6 ------------------------------------------------------------------------------
    tr = res["tracking"]
    probes, acquired = an.probe_frequencies(), tr["acquired"]
    got = [(f, a) for (_, f), a in zip(probes, acquired) if a >= 0]
    # strictly increasing acquisition updates <=> rank correlation 1 (2 points: their order)
    tau = (_spearman([f for f, _ in got], [a for _, a in got]) if len(got) > 2
           else float(np.sign(got[1][1] - got[0][1]) * np.sign(got[1][0] - got[0][0])) if len(got) == 2 else None)
    acq_note = ", ".join(f"{ax} {f:g} Hz: " + (f"update {a}" if a >= 0 else "not acquired")
                         for (ax, f), a in zip(probes, acquired))
    rows.append(Claim(
        "frequency-order", "5, Fig. 6b-c", "fig6_tracking.png",
        "Tracking frequencies are acquired one at a time, low to high",
        "rank correlation of probe frequency with acquisition update (first snapshot with probe error < 1/2 of "
        "no control), acquired frequencies only (two: the sign of their order)",
        tau, "= 1 (strictly increasing), at least 2 of the 4 acquired", len(got),
        None if tau is None else tau > 0.999,
        note=f"n counts acquired frequencies; {acq_note}; paper: about 230 / 1,200 / 2,600 / 4,500 updates"
        + ("" if tau is not None else "; fewer than 2 frequencies acquired in this run")))
    order = np.argsort([f for _, f in probes])
    first, second = order[0], order[1]
    rise = None
    if acquired[first] >= 0 and acquired[second] >= 0:
        snaps, err = tr["snapshot_update"], tr["errors"][:, first]
        window = (snaps >= acquired[first]) & (snaps <= acquired[second])
        e = err[window]
        rise = float(np.max(e - np.minimum.accumulate(e))) if e.size else None
    rows.append(Claim(
        "frequency-crossover", "5, Fig. 6e", "fig6_tracking.png",
        "While the next frequency is acquired, performance on the previous one temporarily declines",
        "largest rise of the lowest frequency's probe error (relative to no control) above its running minimum, "
        "between its acquisition and the next frequency's",
        rise, "> 0.05", 1, decide(rise, above=0.05),
        note="" if rise is not None else "the two lowest frequencies were not both acquired in this run"))
    to = res["tracking_open"]
    peak = float(np.max(to["test_cost"]) / to["test_cost"][0])
    rows.append(Claim(
        "tracking-open-loop-peak", "5, Fig. 6", "fig6_tracking.png",
        "Open-loop tracking students show a closed-loop test-loss peak before converging",
        "max of the open-loop student's closed-loop test loss / its first evaluation",
        peak, "> 2", 1, decide(peak, above=2.0),
        baseline={"closed-loop run": float(np.max(tr["test_cost"]) / tr["test_cost"][0])},
        note=f"the first evaluation is at update {int(to['evaluation_update'][0])} (every "
             f"{int(to['evaluation_update'][0])} updates), not of the update-0 network"))

    # --- App. A.2 / A.3 ----------------------------------------------------------------------
    reg = sorted(res["reg"])
    finals = [float(res["reg"][r]["analysis"]["test_cost"][-1]) for r in reg]
    kfin = [res["reg"][r]["analysis"]["gains"][-1] for r in reg]
    rho_loss = _spearman(reg, finals)
    rows.append(Claim(
        "beta-raises-loss", "A.2, Fig. 8a", "figA2_beta_sweep.png",
        "A higher control cost beta raises the final (state) loss",
        "Spearman correlation of reg_u with the final closed-loop test cost (state part)", rho_loss, "> 0.75",
        len(reg), decide(rho_loss, above=0.75), note="n counts reg_u values; final test costs: " + ", ".join(
            f"reg_u={r:g}: {c:.3g}" for r, c in zip(reg, finals))))
    quality = [_quality(k) for k in kfin]
    rho_q = _spearman(reg, quality)
    rows.append(Claim(
        "beta-underdamped", "A.2, Fig. 8b", "figA2_beta_sweep.png",
        "A higher beta gives more underdamped trajectories",
        "Spearman correlation of reg_u with |arg lambda| / |ln|lambda|| (oscillation per e-fold of decay) of "
        "[[1, 1], [k1, 1 + k2]] at the final gains", rho_q, "> 0.75", len(reg), decide(rho_q, above=0.75),
        note="n counts reg_u values; " + ", ".join(f"reg_u={r:g}: {q:.3g}" for r, q in zip(reg, quality))))
    stable = np.asarray(ct.stability_map(np.array([k[0] for k in kfin]), np.array([k[1] for k in kfin]))) == 2
    rows.append(Claim(
        "beta-stable-gains", "A.2, Fig. 8c", "figA2_beta_sweep.png",
        "Every control cost converges to stable feedback gains",
        "fraction of reg_u members whose final (k1, k2) lies in the exact stable region", float(stable.mean()),
        "= 1", len(reg), decide(float(stable.mean()), above=0.999), note="n counts reg_u values"))
    trained = [_outlier_ratio(res["reg"][r]["W_rec"][1]) for r in reg]
    initial = [_outlier_ratio(res["reg"][r]["W_rec"][0]) for r in reg]
    ratio = float(min(t[0] for t in trained))
    rows.append(Claim(
        "low-rank-outlier", "A.3, Fig. 8d-f", "figA3_spectra.png",
        "Trained recurrent weights have a single outlier eigenvalue (or conjugate pair) beside a compressed bulk",
        "|outlier| / largest bulk |lambda| of the trained W_rec, min over reg_u", ratio, "> 3", len(reg),
        decide(ratio, above=3.0), baseline={"initial W_rec": float(min(i[0] for i in initial))},
        note="n counts reg_u values; bulk radius initial -> trained: " + ", ".join(
            f"{i[1]:.3f} -> {t[1]:.3f}" for i, t in zip(initial, trained))))
    return rows


def numbers(res: dict) -> list[str]:
    """A few printed lines with the numbers behind the figures (stage boundaries, acquisitions)."""
    lines = []
    for s in res["seeds"]:
        c, r = res["closed"][s], res["rank1"][s]
        lines.append(f"seed {s}: tanh run: stage 1 ends at update {c['stages'].stage1_end}, P stabilises at "
                     f"{c['stages'].stage3_start}, gains enter the stable region at {c['entry']}; final test cost "
                     f"{c['test_cost'][-1]:.3g} (open loop {res['open'][s]['test_cost'][-1]:.3g})")
        lines.append(f"seed {s}: rank-1 run: stage 1 ends at {r['stages'].stage1_end}, P stabilises at "
                     f"{r['stages'].stage3_start}; sigma_zm at the end of stage 1 "
                     f"{r['sig'][r['stages'].stage1_end, 0]:+.4f}")
    acq = ", ".join(f"{ax} {f:g} Hz: {'-' if a < 0 else a}" for (ax, f), a in
                    zip(an.probe_frequencies(), res["tracking"]["acquired"]))
    lines.append(f"tracking: acquisition updates ({acq}) within {res['tracking']['update'][-1]} updates")
    return lines
