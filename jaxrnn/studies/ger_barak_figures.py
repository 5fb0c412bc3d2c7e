"""Figures of the Ger & Barak (NeurIPS 2025) reproduction, drawn from the numbers of
:func:`jaxrnn.studies.ger_barak.analyse`. :data:`FIGURES` holds each file's caption.

Stability regions of the (k1, k2) plane are drawn from the exact closed form
(:func:`jaxrnn.analysis.control.stability_map`: the open triangle k1 < 0, k2 < k1,
k2 > (k1 − 4)/2; complex eigenvalues left of the parabola k1 = −k2²/4), rendered per pixel with
the boundary curves on top — never interpolated from the 50 × 50 cost grid.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from jaxrnn.analysis import closed_loop as cl  # noqa: E402
from jaxrnn.analysis import control as ct  # noqa: E402
from jaxrnn.studies import ger_barak_analysis as an  # noqa: E402

_SCALES = ("At the default scale one seed (three with --full); ")
FIGURES = {
    "fig1c_test_loss.png": (
        "Fig. 1c. Top: closed-loop test cost (state cost of 50-step rollouts from 10 fixed initial states) of "
        "two identical tanh RNNs (N = 100, g = 0.1), one trained in closed loop, one as an open-loop student "
        "of the closed-loop run's final network on white noise; bottom: their training losses (different "
        "objectives, not comparable in level). Shading: stages of the closed-loop run (stage 1 ends at the "
        "knee of log loss before stabilisation; stage 3 starts when the joint map's spectral radius drops "
        "below 1 for good). Log update axis (update 0 drawn at 0.5). " + _SCALES + "the first seed is "
        "drawn. Do not read the open-loop training loss as a closed-loop cost."),
    "fig2_feedback_gains.png": (
        "Fig. 2b-c. Effective feedback gains u = k1 x + k2 v (least squares over 10 test rollouts, t >= 1) of "
        "every snapshot, closed loop (blue) and open loop (red), on the cost landscape of static feedback "
        "u = k.x from (1, 1) (grey). Regions from the exact closed form: blue stable, orange oscillatory "
        "instability, green real instability. Right: the early updates; grey and gold markers (closed-loop "
        "path only) are the end of stage 1 and the stabilisation update of the joint map. The gains are a "
        "linear fit to a nonlinear controller, not its exact policy. One closed-loop and one open-loop network "
        "(the first seed; the default scale trains one seed, --full three)."),
    "fig3_stage1.png": (
        "Fig. 3. Stage 1 of the authors' rank-1 linear model (T = 50). Left: loss from x0 = (1, -1), T = 101, "
        "of the reduced system with only sigma_zm nonzero (black), the paper's own closed-form approximation "
        "(App. C.5, red dashed) and the trained network's full joint map at each unstable snapshot (dots). "
        "Middle: the closed form over the rollout (1 = agreement), with the sigma_zm range the training visits "
        "shaded. Right: "
        "sigma_zm over updates with the stages. One network (the first seed; 400 updates at the default scale, "
        "1,000 with --full); the closed form is the paper's formula as printed, not a fit. Where training lives "
        "it can be far below the rollout (middle panel, claims table): do not read its curve as the loss."),
    "fig4_eigenvalues.png": (
        "Fig. 4. Rank-1 linear model (T = 50). (a) training loss with stages; (b) upper eigenvalue of the "
        "complex pair of the joint map per update; (c) the pair's path under SGD on the paper's effective "
        "loss alpha L_inf + (1 - alpha) L_0 from the start of stage 2; (d) copies of the network at the "
        "middle of stage 2 trained with different episode lengths T (each a few dozen updates, same initial "
        "states). One network (the first seed); (c) is a surrogate model, not the network, and (d) is one "
        "restart per T, so the order of neighbouring T is not significant."),
    "fig5_third_eigenvalue.png": (
        "Fig. 5. Rank-1 linear model (T = 50): the third, real eigenvalue lambda3 and the modulus of the "
        "complex pair |lambda1| of the joint map per update (solid: exact eigenvalues; dashed: the paper's "
        "stage-2 approximations, Eqs. 11-12), with the stages. One network (the first seed); the approximations "
        "are only claimed for stage 2, so their drift after stabilisation is expected."),
    "fig6_tracking.png": (
        "Fig. 6. 2-D multi-frequency tracking (linear CTRNN N = 100, alpha = 0.1, Adam 1e-3), one network. "
        "(a) closed-loop training loss with the update at which each frequency is acquired (probe error < 1/2 "
        "of no control); (b) probe error per frequency (x 0.1, 0.3 Hz; y 0.2, 0.4 Hz; 8 phases each); (c) "
        "imaginary parts of the eigenvalues of W_rec - I against the target angular frequencies; (d) "
        "closed-loop test loss of the closed-loop network and of its open-loop student; (e) crossover: the "
        "two lowest frequencies around the second one's acquisition. The title says which frequencies the "
        "run acquired: the default scale (2,000 updates at batch 50) covers only the lower ones; the paper "
        "needs about 4,500 updates for all four (--full)."),
    "figA2_beta_sweep.png": (
        "App. A.2. Control cost reg_u (the authors' reg_U, summed over the batch of 100): state part of the "
        "training loss, final trajectories from (1, 1), (k1, k2) paths on the exact stability regions (the "
        "landscape window covers every path), final closed-loop test cost. Tanh RNNs from the same initial "
        "network, one network per reg_u (4 values at the default scale, 5 with --full; first seed), so differences "
        "between neighbouring reg_u are not significant."),
    "figA3_spectra.png": (
        "App. A.3. Eigenvalues of the recurrent weights W_rec before (open grey circles) and after (blue dots) "
        "training, one tanh RNN per control cost (first seed); bottom: the moduli sorted, initial and trained. "
        "The paper reports an outlier (real or a conjugate pair) beside a bulk compressed towards 0: compare the "
        "sorted moduli to see whether this run's bulk moved at all, and see the claims table for the outlier's "
        "size relative to the bulk."),
}


# ----------------------------------------------------------------------------- helpers


def save(fig, out: Path, name: str, title: str, quiet: bool = False) -> None:
    fig.suptitle(title, fontsize=9)
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    if not quiet:
        print(f"wrote {out / name}", flush=True)


def shade(ax, st, x=lambda u: u) -> None:
    """Stage 1 grey, stage 2 orange, stage 3 unshaded; ``x`` maps updates to the axis."""
    end = len(st.labels) if st.stage3_start < 0 else st.stage3_start
    if st.stage1_end > 0:
        ax.axvspan(x(0), x(st.stage1_end), color="0.8", lw=0, label=f"stage 1 (to {st.stage1_end})")
    if end > st.stage1_end:
        ax.axvspan(x(st.stage1_end), x(end), color="tab:orange", alpha=0.15, lw=0, label=f"stage 2 (to {end})")


def log_updates(u):
    """Update ``u`` on a log axis: update 0 at 0.5."""
    return np.where(np.asarray(u) == 0, 0.5, u)


def stability_background(ax, k1_range=(-1.2, 0.6), k2_range=(-1.2, 0.6)):
    """The authors' landscape ``log(Σ‖x_t‖²/50)`` from (1, 1) under ``u = k·x`` (50 × 50, grey) and the
    exact regions (pixels of the closed form, boundary curves on top)."""
    g1, g2 = np.linspace(*k1_range, 50), np.linspace(*k2_range, 50)
    cost = np.asarray(ct.gain_landscape(an.A, an.B[:, 0], g1, g2))
    mesh = ax.pcolormesh(g1, g2, cost.T, cmap="Greys", shading="auto")
    f1, f2 = np.linspace(*k1_range, 600), np.linspace(*k2_range, 600)
    labels = np.asarray(ct.stability_map(*np.meshgrid(f1, f2)))
    ax.imshow(labels, origin="lower", extent=(*k1_range, *k2_range), aspect="auto", alpha=0.3, zorder=1.5,
              interpolation="nearest", cmap=ListedColormap(["tab:green", "tab:orange", "tab:blue"]), vmin=-0.5,
              vmax=2.5)
    k2 = np.linspace(*k2_range, 400)
    ax.plot(-k2**2 / 4, k2, color="tab:orange", lw=0.8)  # complex | real
    tri = np.array([*ct.STABLE_TRIANGLE, ct.STABLE_TRIANGLE[0]])
    ax.plot(tri[:, 0], tri[:, 1], color="tab:blue", lw=1.2)
    ax.set(xlim=k1_range, ylim=k2_range, xlabel="k1 (position gain)", ylabel="k2 (velocity gain)")
    return mesh


def unit_circle(ax, xlim=(0.55, 1.1), ylim=(-0.02, 0.6)):
    theta = np.linspace(0, np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), "k", lw=0.6)
    ax.set(xlabel="Re λ", ylabel="Im λ", xlim=xlim, ylim=ylim)


# ----------------------------------------------------------------------------- double integrator


def fig1(res, out, quiet):
    seed = res["seeds"][0]
    c, o = res["closed"][seed], res["open"][seed]
    st = c["stages"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, layout="constrained")
    top.loglog(log_updates(np.arange(len(c["test_cost"]))), c["test_cost"], label="closed loop")
    top.loglog(log_updates(np.arange(len(o["test_cost"]))), o["test_cost"], label="open loop (student)")
    bottom.loglog(np.arange(1, len(c["loss"]) + 1), c["loss"], lw=0.7, label="closed loop: rollout cost")
    bottom.loglog(np.arange(1, len(o["loss"]) + 1), o["loss"], lw=0.7, label="open loop: imitation loss")
    for ax, label in ((top, "closed-loop test cost"), (bottom, "training loss")):
        shade(ax, st, log_updates)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    bottom.set_xlabel("update (log; update 0 at 0.5)")
    save(fig, out, "fig1c_test_loss.png", f"Fig. 1c: identical tanh RNNs (N=100, g=0.1), closed- vs open-loop "
         f"training (seed {seed})\nclosed-loop stages: stage 1 to update {st.stage1_end}, P stable from "
         f"{st.stage3_start}; open-loop peak {o['test_cost'].max():.3g} at update {int(o['test_cost'].argmax())}",
         quiet)


def fig2(res, out, quiet):
    seed = res["seeds"][0]
    kc, ko, st = res["closed"][seed]["gains"], res["open"][seed]["gains"], res["closed"][seed]["stages"]
    s1, s3, entry = st.stage1_end, st.stage3_start, res["closed"][seed]["entry"]
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.2), layout="constrained")
    zoom = len(kc) if s3 < 0 else min(len(kc), 2 * s3 + 10)
    both = np.concatenate([kc, ko])
    lo, hi = np.minimum(both.min(0) - 0.05, -1.2), np.maximum(both.max(0) + 0.05, 0.6)
    early = np.concatenate([kc[:zoom], ko[:zoom]])
    pad = 0.1 * np.ptp(early, axis=0) + 0.02
    ranges = [((lo[0], hi[0]), (lo[1], hi[1])),
              ((early[:, 0].min() - pad[0], early[:, 0].max() + pad[0]),
               (early[:, 1].min() - pad[1], early[:, 1].max() + pad[1]))]
    for ax, n, (r1, r2) in zip(axes, (len(kc), zoom), ranges):
        mesh = stability_background(ax, r1, r2)
        for k, colour, label in ((kc, "tab:blue", "closed loop"), (ko, "tab:red", "open loop")):
            ax.plot(k[:n, 0], k[:n, 1], ".-", ms=2, lw=0.6, color=colour, label=label)
        ax.plot(*kc[0], "ko", ms=5, label="update 0 (both)")
        for e, colour, label in ((s1, "0.5", f"end of stage 1 ({s1})"), (s3, "gold", f"P stable ({s3})")):
            if 0 <= e < n:
                ax.plot(*kc[e], "o", color=colour, mec="k", ms=8, label=label)
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_title("whole run", fontsize=9)
    entered = f"at update {entry}" if entry >= 0 else "never (this run)"
    axes[1].set_title(f"first {zoom} updates; closed-loop gains enter the stable triangle {entered}", fontsize=9)
    fig.colorbar(mesh, ax=axes, label="log cost of u = k·x from (1, 1)")
    save(fig, out, "fig2_feedback_gains.png", "Fig. 2b–c: effective gains u ≈ k1 x + k2 v of every snapshot "
         f"(seed {seed}); regions from the exact closed form: blue stable, orange oscillatory, green real "
         "instability", quiet)


def fig3(res, out, quiet):
    seed = res["seeds"][0]
    r1, f3 = res["rank1"][seed], res["fig3"]
    st = r1["stages"]
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    left.semilogy(f3["grid"], f3["rollout"], "k", label="rollout, only σ_zm ≠ 0")
    left.semilogy(f3["grid"], f3["closed_form"], "r--",
                  label="paper's closed form ½(1−r^T)/(1−r), r = |1+√σ_zm|²")
    n = len(f3["trained_sig"])
    dots = left.scatter(f3["trained_sig"], f3["trained_cost"], c=np.arange(n), cmap="viridis", s=12, zorder=3,
                        label="trained network, full P (stages 1–2)")
    fig.colorbar(dots, ax=left, label="update")
    left.set(xlabel="σ_zm = z·m", ylabel="Σ_t ½‖x_t‖², T = 101, x0 = (1, −1)")
    left.legend(fontsize=7)
    band = (f3["trained_sig"].min(), f3["trained_sig"].max())
    mid.semilogy(f3["grid"], f3["closed_form"] / f3["rollout"], "r")
    mid.axhline(1, color="k", lw=0.5)
    mid.axvspan(*band, color="tab:blue", alpha=0.15, lw=0, label="σ_zm visited in stages 1–2")
    mid.set(xlabel="σ_zm", ylabel="closed form / rollout")
    mid.set_title(f"where training lives: ratio {np.min(f3['ratio_trained']):.3g} to "
                  f"{np.max(f3['ratio_trained']):.3g}, median |rel. error| {f3['median_rel_error_trained']:.2f}", fontsize=9)
    mid.legend(fontsize=7)
    right.plot(np.arange(len(r1["sig"])), r1["sig"][:, 0], ".-", ms=2)
    right.axhline(0, color="k", lw=0.5)
    shade(right, st)
    right.set(xlabel="update", ylabel="σ_zm", xlim=(-0.5, min(len(r1["sig"]), 3 * max(st.stage3_start, 10))))
    right.legend(fontsize=8)
    save(fig, out, "fig3_stage1.png", f"Fig. 3: stage 1 — loss vs σ_zm and the paper's closed form (left, its "
         f"relative error middle); σ_zm at the end of stage 1 (update {st.stage1_end}): "
         f"{r1['sig'][st.stage1_end, 0]:+.3f} (right). Authors' rank-1 linear model, m frozen, T = 50", quiet)


def fig4(res, out, quiet):
    seed, sw = res["seeds"][0], res["sweep"]
    r1 = res["rank1"][seed]
    st = r1["stages"]
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 9), layout="constrained")
    a.semilogy(np.arange(len(r1["loss"])), r1["loss"], lw=0.7)
    shade(a, st)
    a.set(xlabel="update", ylabel="training loss (Σ_t mean x², batch 100)", title="rank-1 model, T = 50")
    a.legend(fontsize=8)
    lam = an.pair_eigenvalue(r1["eigs"])
    tops = [unit_circle(ax) for ax in (b, c, d)]
    del tops
    dots = b.scatter(lam.real, lam.imag, c=np.arange(len(lam)), cmap="viridis", s=6)
    fig.colorbar(dots, ax=b, label="update")
    b.set_title("upper eigenvalue of the complex pair of P", fontsize=9)
    start, alphas = min(st.stage1_end, len(lam) - 1), np.array([0.0, 0.48, 0.52, 0.55, 1.0])
    optimise = jax.jit(jax.vmap(cl.optimise_effective_loss, in_axes=(None, 0, None, None, None)),
                       static_argnums=(2, 4))
    sigmas, _ = optimise(
        jnp.asarray(r1["sig"][start], jnp.float32), jnp.asarray(alphas, jnp.float32), 10, 1e-3,
        res["scale"]["effective_steps"])
    sigmas = np.asarray(sigmas, np.float64)
    effective = an.rank1_spectrum(sigmas.reshape(-1, 4)).reshape(sigmas.shape)  # as the trained network's
    c.plot(lam.real, lam.imag, color="0.6", lw=1, label="trained network")
    for alpha, eigs in zip(alphas, effective):
        path = an.pair_eigenvalue(eigs)
        c.plot(path.real, path.imag, lw=1.5, label=f"α = {alpha:g}")
    c.plot(lam[start].real, lam[start].imag, "ko")
    c.set_title(f"SGD on α·L_∞ + (1−α)·L_0 (exponent 10, lr 1e-3) from update {start} (end of stage 1)",
                fontsize=9)
    c.legend(fontsize=7)
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sw["T"])))
    for colour, T, eigs in zip(colours, sw["T"], sw["eigs"]):
        path = an.pair_eigenvalue(eigs)
        d.plot(path.real, path.imag, ".-", ms=2, lw=0.8, color=colour, label=f"T = {T}")
    start_pair = an.pair_eigenvalue(sw["eigs"][0][:1])[0]
    d.plot(start_pair.real, start_pair.imag, "ko", label=f"start: update {sw['start']}")
    d.set_title(f"episode-length sweep: {len(sw['eigs'][0]) - 1} updates from the middle of stage 2", fontsize=9)
    d.legend(fontsize=7)
    lam_all = np.concatenate([lam, *[an.pair_eigenvalue(e) for e in sw["eigs"]]])
    for ax in (b, c, d):
        ax.set(xlim=(min(0.55, lam_all.real.min() - 0.02), max(1.1, lam_all.real.max() + 0.02)),
               ylim=(-0.02, max(0.6, lam_all.imag.max() + 0.02)))
    save(fig, out, "fig4_eigenvalues.png", "Fig. 4: stage 2 — loss and the complex pair of the joint map (P stable "
         f"from update {st.stage3_start}); effective-loss paths; T sweep (authors' rank-1 linear model)", quiet)


@jax.jit
def _stage2_approximations(s_zm, s_zu, s_vm, s_vu):
    """The paper's stage-2 ``λ3`` and ``λ1λ2`` (Eqs. 11-12) as one program (op by op: a dozen)."""
    return cl.stage2_lambda3(s_zm, s_zu, s_vm, s_vu), cl.stage2_pair_product(s_zm, s_zu, s_vm, s_vu)


def fig5(res, out, quiet):
    r1 = res["rank1"][res["seeds"][0]]
    sig, st = r1["sig"], r1["stages"]
    lam3, lam1 = an.third_eigenvalue(r1["eigs"], sig[:, 3])
    x = np.arange(len(lam3))
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.plot(x, lam3, "tab:green", label="λ3 (real), exact")
    approx_lam3, approx_pair = (np.asarray(a) for a in _stage2_approximations(*sig.T))
    ax.plot(x, approx_lam3, "g--", label="λ3 ≈ σ_vu + σ_vm σ_zu / ((σ_vu−1)² − σ_zm)")
    ax.plot(x, lam1, "tab:blue", label="|λ1| (complex pair), exact")
    ax.plot(x, np.sqrt(np.abs(approx_pair)), "b--", label="|λ1| ≈ √(c + bλ3 + λ3²)")
    ax.axhline(1, color="k", lw=0.5)
    shade(ax, st)
    ax.set(xlabel="update", ylabel="eigenvalue of P", ylim=(min(0, lam3.min() - 0.05), 1.2))
    ax.legend(fontsize=7)
    end = (f"λ3 went from {lam3[st.stage3_start]:.2f} at stabilisation (update {st.stage3_start}) to {lam3[-1]:.2f}"
           if st.stage3_start >= 0 else "P never stabilised in this run")
    save(fig, out, "fig5_third_eigenvalue.png", f"Fig. 5: stage 3 — {end} "
         "(paper: the third, real eigenvalue grows — a second slow mode)\n(authors' rank-1 linear model, T = 50; "
         "dashed: the paper's stage-2 approximations)", quiet)


def fig_beta(res, out, quiet):
    reg = sorted(res["reg"])
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 8.5), layout="constrained")
    gains = np.concatenate([res["reg"][r]["analysis"]["gains"] for r in reg])
    lo, hi = np.minimum(gains.min(0) - 0.05, -1.2), np.maximum(gains.max(0) + 0.05, 0.6)
    fig.colorbar(stability_background(c, (lo[0], hi[0]), (lo[1], hi[1])), ax=c, label="log cost")
    cell = an.model_cell(an.NONLINEAR_MODEL)
    readout = an.default_readout(cell, 1)
    finals = []
    for colour, r in zip(plt.cm.plasma(np.linspace(0, 0.85, len(reg))), reg):
        run = res["reg"][r]["analysis"]
        cost = res["reg"][r]["state_cost"]
        w = min(10, len(cost))
        a.semilogy(np.convolve(cost, np.ones(w) / w, "valid"), color=colour, lw=0.8, label=f"reg_u = {r:g}")
        final = jax.tree.map(lambda p: p[-1], run["params"])
        xs, _ = an.integrator_rollouts(cell, readout, final, np.array([[1.0, 1.0]], np.float32))
        b.plot(np.asarray(xs)[0, :, 0], color=colour, label=f"reg_u = {r:g}")
        k = run["gains"]
        c.plot(k[:, 0], k[:, 1], "-", lw=0.6, color=colour)
        c.plot(*k[-1], "o", color=colour, mec="k", ms=7, label=f"reg_u = {r:g}")
        finals.append(run["test_cost"][-1])
    a.set(xlabel="update", ylabel="state part of the training loss (10-update mean)")
    b.axhline(0, color="k", lw=0.5)
    b.set(xlabel="t", ylabel="position x_t", title="final controllers from x0 = (1, 1)")
    c.set_title("(k1, k2) during training; dots: final", fontsize=9)
    d.plot(np.arange(len(reg)), finals, "ko-")
    d.set_xticks(np.arange(len(reg)), [f"{r:g}" for r in reg])
    d.set(xlabel="reg_u", ylabel="final closed-loop test cost (state part)", yscale="log")
    for ax in (a, b, c):
        ax.legend(fontsize=7)
    save(fig, out, "figA2_beta_sweep.png", "App. A.2: control cost reg_u (the authors' reg_U, summed over the batch "
         "of 100; β of Eq. 3 = 4·reg_u at T = 50) — tanh RNNs, same initial network", quiet)


def fig_spectra(res, out, quiet):
    reg = sorted(res["reg"])
    fig, axes = plt.subplots(2, len(reg), figsize=(3.4 * len(reg), 6.8), squeeze=False, layout="constrained")
    theta = np.linspace(0, 2 * np.pi, 300)
    for top, bottom, r in zip(axes[0], axes[1], reg):
        start, final = (an.eigvals(W) for W in res["reg"][r]["W_rec"])
        final = final[np.argsort(-np.abs(final))]
        top.plot(np.cos(theta), np.sin(theta), "k", lw=0.5)
        top.plot(final.real, final.imag, ".", color="tab:blue", ms=3, label="trained")
        top.plot(start.real, start.imag, "o", mfc="none", mec="0.4", ms=4, mew=0.6, label="initial", zorder=3)
        top.plot(final[0].real, final[0].imag, "o", mfc="none", mec="tab:red", ms=11,
                 label=f"outlier |λ| = {abs(final[0]):.2f}")
        top.set_aspect("equal")
        top.set(title=f"reg_u = {r:g}", xlabel="Re λ", ylabel="Im λ")
        top.legend(fontsize=6, loc="lower left")
        rank = np.arange(1, len(final) + 1)
        bottom.semilogy(rank, np.sort(np.abs(start))[::-1], "o", mfc="none", mec="0.4", ms=3, label="initial")
        bottom.semilogy(rank, np.abs(final), ".", color="tab:blue", ms=3, label="trained")
        bottom.set(xlabel="rank", ylabel="|λ| (sorted)")
        bottom.legend(fontsize=7)
    save(fig, out, "figA3_spectra.png", "App. A.3: eigenvalues of W_rec before and after training, tanh RNNs "
         "(g = 0.1), one per reg_u (paper: an outlier, real or a conjugate pair, beside a compressed bulk)", quiet)


#: The double-integrator figures, in order (Fig. 6 is :mod:`~jaxrnn.studies.ger_barak_tracking`).
DRAW = (fig1, fig2, fig3, fig4, fig5, fig_beta, fig_spectra)
