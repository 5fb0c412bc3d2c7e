"""Ger & Barak (NeurIPS 2025, arXiv 2505.13567): learning dynamics of RNNs in closed loop.

    python examples/closed_loop_learning.py [--full] [--out runs/closed_loop_example] [--quiet]

Trains populations with ``jaxrnn.population.run`` (configs built here with ``from_dict``, stored
under ``OUT/runs`` and reloaded on a second call) and analyses the params snapshots with
``jaxrnn.analysis`` vmapped over snapshots. PNGs in ``OUT``: ``fig1c_test_loss`` (closed- vs
open-loop test loss, Fig. 1c), ``fig2_feedback_gains`` ((k1, k2) paths on the stability map,
Fig. 2b–c), ``fig3_stage1`` (stage-1 loss vs σ_zm, rollout and closed form, Fig. 3),
``fig4_eigenvalues`` (stages, eigenvalue paths, effective-loss paths, T sweep, Fig. 4),
``fig5_third_eigenvalue`` (Fig. 5), ``fig6_tracking`` (staircase loss, per-frequency errors,
spectrum of W − I, Fig. 6), ``figA2_beta_sweep`` (control cost, App. A.2), ``figA3_spectra``
(eigenvalues of the trained W_rec, App. A.3).

Runs (SPECS §1). ``nonlinear``: CTRNN(100, tanh, α=1, rate, no bias, "ger_barak"), g = 0.1,
closed_loop SGD 1e-2, clip 1, batch 100, T = 50, ``reg_u`` swept (the authors' reg_U, summed over
the batch; their run is 0.005). ``open_seed<s>``: white-noise open-loop student of the
reg_u = 0.005 member (teacher: its final network; student: the same seed's update-0 network).
``rank1_T<T>``: the authors' rank-1 linear model (``P_Model``, SPECS §1.6) —
``LowRankRNN(100, rank=1, parametrization="ger_barak")``: ``W = u vᵀ``, ``u, v ~ N(0, 1/N)``,
input vector ``m ~ U(±1/√N)`` frozen, readout ``z ~ U(±1/√N)`` (the rule's default readout for
this cell) — with x0 ~ U(−2, 2), one run per episode length T from the same seed — the paper
restarts its T sweep from a mid-training checkpoint, the runner starts every member at update 0.
``tracking``: linear CTRNN(100, α = 0.1), g = 0.2, W_in frozen, Adam 1e-3, no clipping.

Rank-1 model. The library's default ``LowRankRNN`` parametrisation (``W = U Vᵀ/N``,
``U, V ~ N(0, 1)``) gives ``W`` the same distribution, but under plain SGD its ``U, V`` move N
times slower relative to ``z`` and it never leaves stage 2; ``parametrization = "ger_barak"``
is the authors' parametrisation. Their loss is a mean over the T steps where ``closed_loop``
sums: ``learning_rate = 0.01/T`` with ``max_grad_norm = T`` is exactly their SGD 0.01 with clip 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import jaxrnn  # noqa: E402
from jaxrnn import population  # noqa: E402
from jaxrnn.analysis import closed_loop as cl  # noqa: E402
from jaxrnn.analysis import control as ct  # noqa: E402
from jaxrnn.models import low_rank_factors, recurrent_matrix  # noqa: E402
from jaxrnn.population.builders import build_cell  # noqa: E402
from jaxrnn.rules.controller import (Episodes, controller_step, default_readout, initial_carry,  # noqa: E402
                                     plant_rollouts, sample_episodes, tracking_rollout)

SMALL = dict(seeds=[0], nonlinear_updates=1000, reg_u=[0.0, 0.005, 0.25, 1.0], open_updates=1000,
             rank1_updates=400, rank1_T=[10, 25, 50, 100], tracking_updates=2000, tracking_batch=50, tracking_eval=25)
FULL = dict(seeds=[0, 1, 2], nonlinear_updates=1000, reg_u=[0.0, 0.005, 0.05, 0.25, 1.0], open_updates=1000,
            rank1_updates=1000, rank1_T=[10, 20, 35, 50, 75, 100], tracking_updates=5000, tracking_batch=100,
            tracking_eval=50)
MAIN_REG_U, MAIN_T, HIDDEN = 0.005, 50, 100
PLANT, PLANT_PARAMS = jaxrnn.make("double-integrator")
A, B, C = PLANT.matrices(PLANT_PARAMS)
TEST_KEY = jax.random.PRNGKey(2025)  # the 10 test initial states of the (k1, k2) fits (SPECS §1.5)
NONLINEAR_MODEL = {"cell": "ctrnn", "hidden": HIDDEN, "activation": "tanh", "alpha": 1.0,
                   "weight_init": "ger_barak", "output": "rate", "use_bias": False, "gain": 0.1}
TRACKING_MODEL = {"cell": "ctrnn", "hidden": HIDDEN, "activation": "linear", "alpha": 0.1, "weight_init": "uniform",
                  "input_scale": float(1.0 / np.sqrt(HIDDEN)), "output": "rate", "use_bias": False, "gain": 0.2}
RANK1_MODEL = {"cell": "lowrank", "hidden": HIDDEN, "rank": 1, "alpha": 1.0, "activation": "linear",
               "output": "state", "use_bias": False, "parametrization": "ger_barak", "gain": 1.0}
GAIN_GRID = np.linspace(-1.2, 0.6, 50)  # the authors' (k1, k2) landscape grid


# ----------------------------------------------------------------------------- configs


def _config(updates, task, model, rule, seeds, eval_every=1) -> dict:
    run = {"num_updates": updates, "eval_every": eval_every, "chunk_updates": 100 * eval_every,
           "snapshots": updates // eval_every + 1, "snapshot_spacing": "linear", "stop_metric": "test_cost",
           "stop_threshold": float("inf")}  # snapshots after every evaluation (every update by default)
    return {"run": run, "task": task, "model": model, "rule": rule, "grid": {"seeds": seeds}}


def nonlinear_config(s: dict) -> dict:
    rule = {"name": "closed_loop", "optimizer": "sgd", "learning_rate": 1e-2, "max_grad_norm": 1.0, "batch": 100,
            "num_steps": MAIN_T, "reg_u": s["reg_u"], "trainable": ["W_in", "W_rec", "W_out"]}
    return _config(s["nonlinear_updates"], {"name": "double-integrator"}, NONLINEAR_MODEL, rule, s["seeds"])


def open_loop_config(s: dict, teacher: Path, member: int, seed: int) -> dict:
    rule = {"name": "open_loop", "teacher": str(teacher), "teacher_member": member, "white_noise": True,
            "optimizer": "sgd", "learning_rate": 1e-2, "max_grad_norm": 1.0, "batch": 100, "num_steps": MAIN_T}
    return _config(s["open_updates"], {"name": "double-integrator"}, NONLINEAR_MODEL, rule, [seed])


def rank1_config(s: dict, T: int) -> dict:
    rule = {"name": "closed_loop", "optimizer": "sgd", "learning_rate": 0.01 / T, "max_grad_norm": float(T),
            "batch": 100, "num_steps": T, "reg_u": 0.0, "trainable": ["U", "V", "W_out"]}
    task = {"name": "double-integrator", "init_half_width": 2.0, "max_steps_in_episode": T}
    return _config(s["rank1_updates"], task, dict(RANK1_MODEL), rule, s["seeds"])


def tracking_config(s: dict) -> dict:
    rule = {"name": "closed_loop", "optimizer": "adam", "learning_rate": 1e-3, "max_grad_norm": float("inf"),
            "batch": s["tracking_batch"], "reg_u": 0.0}
    return _config(s["tracking_updates"], {"name": "tracking-2d"}, TRACKING_MODEL, rule, s["seeds"][:1],
                   s["tracking_eval"])


# ----------------------------------------------------------------------------- analysis of snapshots


def model_cell(model: dict):
    """The cell a ``[model]`` table builds (defaults filled in as ``from_dict`` does)."""
    return build_cell({**dataclasses.asdict(population.ModelConfig()), **model})


def snapshot_params(ds, member: int) -> dict:
    """The member's ``{"cell", "readout"}`` params with a leading snapshot axis, from the store."""
    tree: dict = {}
    for name in ds.data_vars:
        if name.startswith("params."):
            module, leaf = name.split(".")[1:]
            tree.setdefault(module, {"params": {}})["params"][leaf] = jnp.asarray(ds[name].values[member])
    return tree


def member_index(ds, seed: int, reg_u: float | None = None) -> int:
    mask = ds.seed.values == seed
    if reg_u is not None:
        mask &= np.isclose(ds["rule.reg_u"].values.astype(float), reg_u)
    return int(np.flatnonzero(mask)[0])


def integrator_rollouts(cell, readout, params, x0s, T: int = MAIN_T):
    """Closed-loop rollouts of one controller from ``x0s[K, 2]``: ``states[K, T, 2]``, ``controls[K, T]``."""
    episodes = Episodes(x0s, None, jax.random.split(TEST_KEY, x0s.shape[0]))
    policy = lambda h, y: (*controller_step(cell, readout, params, h, y), ())  # noqa: E731
    xs, us, _ = plant_rollouts(PLANT, policy, initial_carry(cell, 1), episodes, PLANT_PARAMS, T)
    return xs, us[..., 0]


@functools.partial(jax.jit, static_argnums=(0, 1))
def gains_over_snapshots(cell, readout, params):
    """Effective gains ``k[S, 2]`` (``u ≈ k1 x + k2 v``, t ≥ 1) from 10 test rollouts per snapshot."""
    x0s = sample_episodes(TEST_KEY, PLANT, PLANT_PARAMS, 10).x0
    fit = lambda p: ct.feedback_gains_from_rollouts(*integrator_rollouts(cell, readout, p, x0s), drop=1)  # noqa: E731
    return jax.vmap(fit)(params)


def rank1_analysis(ds, member: int = 0) -> dict:
    """Overlaps ``σ[S, 4]``, the reduced map's spectrum ``[S, 4]`` (= the nonzero spectrum of the joint
    ``P``, SPECS §1.7) and the library's stages of a rank-1 run."""
    params = snapshot_params(ds, member)
    u, v = jax.vmap(functools.partial(low_rank_factors, model_cell(RANK1_MODEL)))(params["cell"])
    m, z = params["cell"]["params"]["W_in"][..., 0], params["readout"]["params"]["W_out"][:, 0]
    sig = np.asarray(cl.overlaps_batched(m, z, u[..., 0], v[..., 0]), np.float64)
    P = cl.reduced_system(*sig.T)
    E = ds.sizes["update"]
    st = cl.learning_stages(ds.loss.values[member], cl.spectral_radius(P)[:E], cl.dominant_is_complex(P)[:E])
    return {"params": params, "sig": sig, "eigs": np.asarray(cl.spectrum(P)), "stages": jax.tree.map(np.asarray, st)}


def pair_eigenvalue(eigs):
    """The upper member of the complex pair among the 3 leading eigenvalues (the dominant one if all real)."""
    top = eigs[:, :3]
    pick = np.where(np.abs(top.imag).max(1) > 1e-9, np.argmax(top.imag, 1), 0)
    return top[np.arange(len(top)), pick]


def third_eigenvalue(eigs, s_vu):
    """``(λ3, |λ1|)``: λ3 the real root outside the complex pair (all real: the one nearest σ_vu)."""
    top = eigs[:, :3]
    real = np.abs(top.imag) <= 1e-6 * np.maximum(np.abs(top), 1e-12)
    pick = np.where(real.all(1), np.argmin(np.abs(top - s_vu[:, None]), 1), np.argmax(real, 1))
    others = np.where(np.arange(3)[None] == pick[:, None], 0.0, np.abs(top))
    return top[np.arange(len(top)), pick].real, others.max(1)


def probe_errors(cell, readout, plant, task_params, params, num_phases: int = 8):
    """Tracking error on single-sinusoid probes (x: f_x, y: f_y; 8 phases) per snapshot, ``[S, 4]``,
    relative to the error of doing nothing (1 = not tracking at all)."""
    freqs = np.asarray(task_params.frequencies)
    phases = np.linspace(-np.pi, np.pi, num_phases, endpoint=False)
    refs = jnp.stack([jnp.stack([plant.probe_reference(axis, f, ph, task_params) for ph in phases])
                      for axis in (0, 1) for f in freqs[axis]])  # [4, phases, T, 2]
    h0, key = initial_carry(cell, 4), jax.random.PRNGKey(0)

    def one(p):
        policy = lambda h, y: (*controller_step(cell, readout, p, h, y), ())  # noqa: E731
        run = lambda ref: tracking_rollout(policy, h0, jnp.zeros(4), ref, key, task_params, plant.num_samples)[0]
        return jnp.mean(jax.vmap(jax.vmap(run))(refs), axis=(1, 2))

    nothing = np.mean(np.sum(np.asarray(refs) ** 2, -1), axis=(1, 2))
    return np.asarray(jax.jit(jax.vmap(one))(params)) / nothing


# ----------------------------------------------------------------------------- figures


def shade(ax, st):
    """Stage 1 grey, stage 2 orange, stage 3 unshaded (boundaries from ``learning_stages``)."""
    s1, s3 = int(st.stage1_end), int(st.stage3_start)
    end = len(st.labels) if s3 < 0 else s3
    if s1 > 0:
        ax.axvspan(0, s1, color="0.8", lw=0, label=f"stage 1 (to {s1})")
    if s1 >= 0 and end > s1:
        ax.axvspan(s1, end, color="tab:orange", alpha=0.15, lw=0, label=f"stage 2 (to {end})")


def save(fig, out: Path, name: str, title: str) -> None:
    fig.suptitle(title, fontsize=9)
    fig.savefig(out / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {out / name}", flush=True)


def stability_background(ax):
    """The authors' landscape ``log(Σ‖x_t‖²/50)`` from (1, 1) under ``u = k·x``, and the regions of
    ``stability_map``: stable (blue), unstable oscillatory (orange), unstable real (green)."""
    cost = np.asarray(ct.gain_landscape(A, B[:, 0], GAIN_GRID, GAIN_GRID))
    labels = np.asarray(ct.stability_map(*jnp.meshgrid(GAIN_GRID, GAIN_GRID, indexing="ij")))
    mesh = ax.pcolormesh(GAIN_GRID, GAIN_GRID, cost.T, cmap="Greys", shading="auto")
    ax.contourf(GAIN_GRID, GAIN_GRID, labels.T, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.25,
                colors=["tab:green", "tab:orange", "tab:blue"])
    ax.set(xlabel="k1 (position gain)", ylabel="k2 (velocity gain)")
    return mesh


def fig1(nl, op, i, st, out):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, layout="constrained")
    top.semilogy(nl.evaluation_update.values, nl.val_test_cost.values[i], label="closed loop")
    top.semilogy(op.evaluation_update.values, op.val_test_cost.values[0], label="open loop (student)")
    bottom.semilogy(nl["update"].values, nl.loss.values[i], lw=0.7, label="closed loop: rollout cost")
    bottom.semilogy(op["update"].values, op.loss.values[0], lw=0.7, label="open loop: imitation loss")
    for ax, label in ((top, "closed-loop test loss"), (bottom, "training loss")):
        shade(ax, st)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    bottom.set_xlabel("update")
    save(fig, out, "fig1c_test_loss.png", "Fig. 1c: identical tanh RNNs (N=100, g=0.1), closed- vs open-loop training"
         "\ntest = closed-loop state cost from 10 initial states; stages of the closed-loop run")


def fig2(k_closed, k_open, st, out):
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.2), layout="constrained")
    s1, s3 = int(st.stage1_end), int(st.stage3_start)
    zoom = len(k_closed) if s3 < 0 else min(len(k_closed), 2 * s3)
    for ax, n in zip(axes, (len(k_closed), zoom)):
        mesh = stability_background(ax)
        for k, colour, label in ((k_closed, "tab:blue", "closed loop"), (k_open, "tab:red", "open loop")):
            ax.plot(k[:n, 0], k[:n, 1], ".-", ms=2, lw=0.6, color=colour, label=label)
            ax.plot(*k[0], "ko", ms=5)
            for e, c in ((s1, "0.5"), (s3, "gold")):
                if 0 <= e < n:
                    ax.plot(*k[e], "o", color=c, mec="k", ms=8)
        ax.legend(fontsize=8, loc="lower left")
    both = np.concatenate([k_closed[:zoom], k_open[:zoom]])
    pad = 0.1 * np.ptp(both, axis=0) + 0.02
    axes[1].set(xlim=(both[:, 0].min() - pad[0], both[:, 0].max() + pad[0]),
                ylim=(both[:, 1].min() - pad[1], both[:, 1].max() + pad[1]))
    axes[0].set_title("whole run; black: update 0", fontsize=9)
    axes[1].set_title(f"first {zoom} updates; grey: end of stage 1 ({s1}), gold: stabilisation ({s3})", fontsize=9)
    fig.colorbar(mesh, ax=axes, label="log cost of u = k·x from (1, 1)")
    save(fig, out, "fig2_feedback_gains.png", "Fig. 2b–c: effective gains u ≈ k1 x + k2 v (least squares over 10 "
         "test rollouts, t ≥ 1) of every snapshot; blue: stable, orange: oscillatory, green: real instability")


def fig3(r1, out):
    sig, st, grid = r1["sig"], r1["stages"], np.linspace(-0.3, 0.12, 211)
    n = min(len(sig), 40)
    with jax.enable_x64(True):
        a, b, c = (np.asarray(m, np.float64) for m in (A, B, C))
        cost = jax.vmap(lambda k: 101 * ct.closed_loop_cost(a, b, c, k, np.array([[1.0, -1.0]]), 101, 0.5 * np.eye(2)))
        # controller (a, b) with σ_zu = σ_vm = σ_vu = 0: its joint map is reduced_system(σ_zm, 0, 0, 0)
        reduced = ct.LinearController(np.zeros((grid.size, 2, 2)), np.tile([[1.0], [0.0]], (grid.size, 1, 1)),
                                      np.stack([grid, 0 * grid], -1)[:, None, :])
        p = jax.tree.map(lambda x: np.asarray(x[:n], np.float64), r1["params"])
        W_rec = jax.vmap(functools.partial(recurrent_matrix, model_cell(RANK1_MODEL)))(p["cell"])
        trained = cost(jax.vmap(ct.rnn_controller)(p["cell"]["params"]["W_in"], W_rec, p["readout"]["params"]["W_out"]))
        sweep, closed_form = cost(reduced), cl.stage1_loss(jnp.asarray(grid), 101)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    left.semilogy(grid, sweep, "k", label="rollout of the reduced system, σ_zu = σ_vm = σ_vu = 0")
    left.semilogy(grid, closed_form, "r--", label="closed form ½(1−r^T)/(1−r), r = |1+√σ_zm|²")
    dots = left.scatter(sig[:n, 0], trained, c=np.arange(n), cmap="viridis", s=14, zorder=3,
                        label="trained network's snapshots (full P)")
    fig.colorbar(dots, ax=left, label="update")
    left.set(xlabel="σ_zm = z·m", ylabel="Σ_t ½‖x_t‖², T = 101, x0 = (1, −1)")
    left.legend(fontsize=7)
    right.plot(np.arange(n), sig[:n, 0], ".-")
    right.axhline(0, color="k", lw=0.5)
    shade(right, st)
    right.set(xlabel="update", ylabel="σ_zm", xlim=(-0.5, n))
    right.legend(fontsize=8)
    save(fig, out, "fig3_stage1.png", "Fig. 3: stage 1 — loss vs σ_zm (left); σ_zm is driven to small negative "
         "values (right). Authors' rank-1 linear model, m frozen, T = 50")


def unit_circle(ax):
    theta = np.linspace(0, np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), "k", lw=0.6)
    ax.set(xlabel="Re λ", ylabel="Im λ", xlim=(0.55, 1.1), ylim=(-0.02, 0.6))


def fig4(ds, r1, paths, out):
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 9), layout="constrained")
    a.semilogy(ds["update"].values, ds.loss.values[0], lw=0.7)
    shade(a, r1["stages"])
    a.set(xlabel="update", ylabel="training loss (Σ_t mean x², batch 100)", title="rank-1 model, T = 50")
    a.legend(fontsize=8)
    for ax in (b, c, d):
        unit_circle(ax)
    lam = paths[MAIN_T]
    dots = b.scatter(lam.real, lam.imag, c=np.arange(len(lam)), cmap="viridis", s=6)
    fig.colorbar(dots, ax=b, label="update")
    b.set_title("upper eigenvalue of the complex pair of P", fontsize=9)
    start, alphas = min(10, len(lam) - 1), np.array([0.0, 0.48, 0.52, 0.55, 1.0])
    sigmas, _ = jax.vmap(cl.optimise_effective_loss, in_axes=(None, 0, None, None, None))(
        jnp.asarray(r1["sig"][start], jnp.float32), jnp.asarray(alphas, jnp.float32), 10, 1e-3, 240)
    effective = np.asarray(cl.spectrum(cl.reduced_system(*jnp.moveaxis(sigmas, -1, 0))))
    c.plot(lam.real, lam.imag, color="0.6", lw=1, label="trained network")
    for alpha, eigs in zip(alphas, effective):
        path = pair_eigenvalue(eigs)
        c.plot(path.real, path.imag, lw=1.5, label=f"α = {alpha:g}")
    c.plot(lam[start].real, lam[start].imag, "ko")
    c.set_title(f"SGD on α·L_∞ + (1−α)·L_0 (exponent 10, lr 1e-3, 240 steps) from update {start}", fontsize=9)
    c.legend(fontsize=7)
    for colour, (T, path) in zip(plt.cm.viridis(np.linspace(0, 0.9, len(paths))), sorted(paths.items())):
        d.plot(path.real, path.imag, ".-", ms=2, lw=0.6, color=colour, label=f"T = {T}")
    d.set_title("episode-length sweep (same seed, every run from update 0)", fontsize=9)
    d.legend(fontsize=7)
    save(fig, out, "fig4_eigenvalues.png", "Fig. 4: stage 2 — loss plateau while the complex pair of the joint map "
         "spirals into the unit disk; effective-loss paths; T sweep (authors' rank-1 linear model)")


def fig5(r1, out):
    sig, st = r1["sig"], r1["stages"]
    lam3, lam1 = third_eigenvalue(r1["eigs"], sig[:, 3])
    x = np.arange(len(lam3))
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.plot(x, lam3, "tab:green", label="λ3 (real), exact")
    ax.plot(x, cl.stage2_lambda3(*sig.T), "g--", label="λ3 ≈ σ_vu + σ_vm σ_zu / ((σ_vu−1)² − σ_zm)")
    ax.plot(x, lam1, "tab:blue", label="|λ1| (complex pair), exact")
    ax.plot(x, np.sqrt(np.abs(cl.stage2_pair_product(*sig.T))), "b--", label="|λ1| ≈ √(c + bλ3 + λ3²)")
    ax.axhline(1, color="k", lw=0.5)
    shade(ax, st)
    ax.set(xlabel="update", ylabel="eigenvalue of P", ylim=(0, 1.2))
    ax.legend(fontsize=7)
    save(fig, out, "fig5_third_eigenvalue.png", "Fig. 5: stage 3 — after stabilisation the third, real eigenvalue "
         "grows: a second slow mode\n(authors' rank-1 linear model, T = 50; dashed: stage-2 approximations)")


def fig_beta(nl, seed, cell, readout, out):
    reg = sorted(set(nl["rule.reg_u"].values.tolist()))
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 8.5), layout="constrained")
    fig.colorbar(stability_background(c), ax=c, label="log cost")
    finals = []
    for colour, r in zip(plt.cm.plasma(np.linspace(0, 0.85, len(reg))), reg):
        i = member_index(nl, seed, r)
        params = snapshot_params(nl, i)
        a.semilogy(np.convolve(nl.state_cost.values[i], np.ones(10) / 10, "valid"), color=colour, lw=0.8,
                   label=f"reg_u = {r:g}")
        xs, _ = integrator_rollouts(cell, readout, jax.tree.map(lambda p: p[-1], params), jnp.array([[1.0, 1.0]]))
        b.plot(np.asarray(xs[0, :, 0]), color=colour, label=f"reg_u = {r:g}")
        k = np.asarray(gains_over_snapshots(cell, readout, params))
        c.plot(k[:, 0], k[:, 1], "-", lw=0.6, color=colour)
        c.plot(*k[-1], "o", color=colour, mec="k", ms=7, label=f"reg_u = {r:g}")
        finals.append(nl.val_test_cost.values[i, -1])
    a.set(xlabel="update", ylabel="state part of the training loss (10-update mean)")
    b.axhline(0, color="k", lw=0.5)
    b.set(xlabel="t", ylabel="position x_t", title="final controllers from x0 = (1, 1)")
    c.set_title("(k1, k2) during training; dots: final", fontsize=9)
    d.plot(np.arange(len(reg)), finals, "ko-")
    d.set_xticks(np.arange(len(reg)), [f"{r:g}" for r in reg])
    d.set(xlabel="reg_u", ylabel="final closed-loop test loss (state part)", yscale="log")
    for ax in (a, b, c):
        ax.legend(fontsize=7)
    save(fig, out, "figA2_beta_sweep.png", "App. A.2: control cost reg_u (the authors' reg_U, summed over the batch "
         "of 100; β of Eq. 3 = 4·reg_u at T = 50) — tanh RNNs, same initial network")


def fig_spectra(nl, seed, out):
    reg = sorted(set(nl["rule.reg_u"].values.tolist()))
    fig, axes = plt.subplots(1, len(reg), figsize=(3.4 * len(reg), 3.6), squeeze=False, layout="constrained")
    theta = np.linspace(0, 2 * np.pi, 300)
    for ax, r in zip(axes[0], reg):
        W = nl["params.cell.W_rec"].values[member_index(nl, seed, r)]
        start, final = np.asarray(cl.spectrum(jnp.asarray(W[[0, -1]])))
        ax.plot(np.cos(theta), np.sin(theta), "k", lw=0.5)
        ax.plot(start.real, start.imag, ".", color="0.6", ms=3, label="init")
        ax.plot(final.real, final.imag, ".", color="tab:blue", ms=3, label="trained")
        ax.plot(final[0].real, final[0].imag, "o", mfc="none", mec="tab:red", ms=10,
                label=f"|λ| = {abs(final[0]):.2f}")
        ax.set_aspect("equal")
        ax.set(title=f"reg_u = {r:g}", xlabel="Re λ", ylabel="Im λ")
        ax.legend(fontsize=7, loc="lower left")
    save(fig, out, "figA3_spectra.png", "App. A.3: eigenvalues of the trained recurrent weights W_rec — an outlier "
         "(real or a conjugate pair) beside a compressed bulk (tanh RNNs, g = 0.1)")


def fig6(tr, out):
    plant, task_params = jaxrnn.make("tracking-2d")
    cell, params = model_cell(TRACKING_MODEL), snapshot_params(tr, 0)
    errors = probe_errors(cell, default_readout(cell, 2), plant, task_params, params)
    snaps, freqs = tr.snapshot_update.values, np.asarray(task_params.frequencies)
    names = [f"{axis} {f:g} Hz (ω = {2 * np.pi * f:.2f})" for axis, row in zip("xy", freqs) for f in row]
    colours = plt.cm.tab10(np.arange(4))
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    a.semilogy(tr["update"].values, tr.loss.values[0], lw=0.6, color="k")
    for colour, e, name in zip(colours, errors.T, names):
        b.semilogy(snaps, e, color=colour, label=name)
        if np.any(e < 0.5):
            a.axvline(snaps[np.argmax(e < 0.5)], color=colour, ls="--", label=f"{name}: error < ½")
    a.set(xlabel="update", ylabel="training loss (tracking error)")
    b.axhline(0.5, color="k", lw=0.5, ls=":")
    b.set(xlabel="update", ylabel="probe error / error without control (8 phases)")
    W = params["cell"]["params"]["W_rec"]
    eigs = np.asarray(cl.spectrum(W - jnp.eye(W.shape[-1])))
    c.scatter(np.repeat(snaps, eigs.shape[1]), np.abs(eigs.imag).ravel(), s=1, c="0.4")
    for colour, f in zip(colours, freqs.ravel()):
        c.axhline(2 * np.pi * f, color=colour, lw=1)
    c.set(xlabel="update", ylabel="|Im λ(W_rec − I)| (rad/s, τ = 1)", ylim=(-0.05, 3.2))
    for ax in (a, b):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save(fig, out, "fig6_tracking.png", "Fig. 6: 2-D multi-frequency tracking (linear CTRNN N = 100, closed loop, "
         "Adam) — staircase loss; frequencies acquired low to high; eigenvalues of W − I approach the ω (lines)")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the paper's scale (slow on CPU)")
    parser.add_argument("--out", default="runs/closed_loop_example", help="folder of the PNGs (and runs/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    s, out = (FULL if args.full else SMALL), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def train(raw, name):
        return population.run(population.from_dict(raw, name=name), out=out / "runs" / name, quiet=args.quiet)

    seed = s["seeds"][0]
    nl = train(nonlinear_config(s), "nonlinear")
    opened = {sd: train(open_loop_config(s, out / "runs" / "nonlinear", member_index(nl, sd, MAIN_REG_U), sd),
                        f"open_seed{sd}") for sd in s["seeds"]}
    rank1 = {T: train(rank1_config(s, T), f"rank1_T{T}") for T in s["rank1_T"]}
    tr = train(tracking_config(s), "tracking")

    cell = model_cell(NONLINEAR_MODEL)
    readout = default_readout(cell, 1)
    i = member_index(nl, seed, MAIN_REG_U)
    closed_params, open_params = snapshot_params(nl, i), snapshot_params(opened[seed], 0)
    p = closed_params["cell"]["params"]
    P = cl.joint_matrix_batched(A, B, C, p["W_in"], p["W_rec"], closed_params["readout"]["params"]["W_out"], 1.0)
    E = nl.sizes["update"]  # the loss of update u is that of snapshot u (its params before the update)
    st = jax.tree.map(np.asarray, cl.learning_stages(nl.loss.values[i], cl.spectral_radius(P)[:E]))
    fig1(nl, opened[seed], i, st, out)
    fig2(*(np.asarray(gains_over_snapshots(cell, readout, q)) for q in (closed_params, open_params)), st, out)
    fig_beta(nl, seed, cell, readout, out)
    fig_spectra(nl, seed, out)

    analyses = {T: rank1_analysis(ds) for T, ds in rank1.items()}
    paths = {T: pair_eigenvalue(r["eigs"]) for T, r in analyses.items()}
    fig3(analyses[MAIN_T], out)
    fig4(rank1[MAIN_T], analyses[MAIN_T], paths, out)
    fig5(analyses[MAIN_T], out)
    fig6(tr, out)


if __name__ == "__main__":
    main()
