"""The claims table of the Huang, Singh & Rajan (2024) reproduction, one set per algorithm.

Every threshold below was fixed before the runs it judges (they are the module's constants);
``holds`` is ``None`` only when the statistic cannot be computed, and the note says why.
Statistics across seeds treat seeds as the independent units (n = seeds); where a p-value pools
snapshots of the same seed (the paper's Fig. 1d regression) the note says it overstates the
evidence.

Claims (``<id>-<algorithm>``):

- ``learns-po`` / ``learns-fo`` (the issue's target): mean final return over seeds ≥ −250.
- ``no-late-collapse``: no agent's final return is more than 150 below its own best.
- ``policy-sharpens`` (1b): decisiveness (mean ``|clip μ|/2`` over the θ–θ̇ grid) rises from the
  first to the last snapshot, PO and FO members pooled: paired t-test, mean rise > 0, p < 0.05.
- ``fo-sharper-than-po`` (1b): final decisiveness FO > PO (Welch t-test p < 0.05).
- ``fo-low-torque-high-speed`` (1b): for final FO agents, mean ``|μ|`` at ``|θ̇| ≥ 6`` rad/s is
  below half of that at ``|θ̇| ≤ 2`` (ratio < 0.5, mean over seeds); PO's ratio as the baseline.
- ``ring-beyond-inputs`` (1c): final PO ring score minus that of the same seed's untrained
  network driven by the same observations > 0.05, paired t-test p < 0.05.
- ``stable-goal-fp`` (1c): a stable FP under the goal observation at the final snapshot in
  ≥ 80 % of PO seeds.
- ``fp-approaches-goal`` (1c): the stable goal FP's distance to the goal location falls over
  training: Spearman ρ(iteration, distance) per seed, mean < 0 with one-sample t-test p < 0.05.
- ``hanging-fp-later`` (1c): an unstable FP under the hanging observation exists at the final
  snapshot in ≥ 80 % of PO seeds and first appears (for good) later than the stable goal FP in
  most of them.
- ``fp-proximity-reward`` (1d): OLS of reward-to-go on the stable goal FP's distance to its
  final position, PO seeds × snapshots pooled: r > 0 and p < 0.05.
- ``explore-then-compress`` (1e): per PO seed, the quadratic fit ``τ1(u) = a + b u + c u²``
  of the mean τ1 over iterations has ``c < 0`` (mean over seeds < 0, one-sample t-test
  p < 0.05) and its vertex lies inside the middle 80 % of training for ≥ 60 % of seeds.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from jaxrnn.studies.claims import Claim, decide
from jaxrnn.studies.huang_figures import decisiveness, fp_distance_to_final

TARGET = -250.0
MAX_DROP = 150.0
ALPHA = 0.05
PO, FO = "pendulum-po", "pendulum-fo"


def _p(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _v(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def learning_claims(result, algo: str, name: str) -> list[Claim]:
    claims = []
    iterations = result["config"].run.num_updates
    budget = "" if iterations == 100 else f"; set for 100 iterations, here {iterations}"
    for task in (PO, FO):
        final = result["tasks"][task]["analysis"]["val_return"][:, -1]
        claims.append(Claim(
            id=f"learns-{task[-2:]}-{algo}", section="Methods", figure=f"fig1a_learning_{algo}.png",
            paper=f"RNN agents trained by RL balance the pendulum ({task[-2:].upper()})",
            statistic=f"{name}: mean over seeds of the final return (20 deterministic episodes, iteration "
                      f"{result['config'].run.num_updates}); per seed {', '.join(f'{x:.0f}' for x in final)}",
            value=_v(np.mean(final)), threshold=f">= -250 (the issue's target{budget})", n=len(final),
            holds=bool(np.mean(final) >= TARGET), baseline={"solved swing-up, about": -175.0}))
    drops = np.concatenate([np.nanmax(a["val_return"], 1) - a["val_return"][:, -1]
                            for a in (result["tasks"][t]["analysis"] for t in (PO, FO))])
    claims.append(Claim(
        id=f"no-late-collapse-{algo}", section="Methods", figure=f"fig1a_learning_{algo}.png",
        paper="(the issue) training is stable: no agent collapses late",
        statistic=f"{name}: largest (best − final) return over all PO and FO agents, {iterations} iterations",
        value=_v(np.max(drops)),
        threshold="<= 150", n=len(drops), holds=bool(np.max(drops) <= MAX_DROP)))
    return claims


def policy_claims(result, algo: str, name: str) -> list[Claim]:
    fig = f"fig1b_policy_{algo}.png"
    d = {t: decisiveness(result["tasks"][t]["analysis"]["landscape"]) for t in (PO, FO)}
    rise = np.concatenate([d[t][:, -1] - d[t][:, 0] for t in (PO, FO)])
    t = stats.ttest_1samp(rise, 0.0, alternative="greater")
    claims = [Claim(
        id=f"policy-sharpens-{algo}", section="Fig. 1b", figure=fig,
        paper="Training sharpens the policy landscape (clearer positive vs negative torques), PO and FO",
        statistic=f"{name}: final − initial decisiveness (mean |clip μ|/2 over the θ–θ̇ grid), PO and FO agents",
        value=_v(np.mean(rise)), threshold="> 0 with one-sided paired t-test p < 0.05", n=len(rise),
        p_value=_p(t.pvalue), holds=decide(np.mean(rise), above=0.0, p_value=_p(t.pvalue), alpha=ALPHA),
        baseline={"initial decisiveness (mean)": _v(np.mean(np.concatenate([d[PO][:, 0], d[FO][:, 0]])))})]
    w = stats.ttest_ind(d[FO][:, -1], d[PO][:, -1], equal_var=False)
    diff = np.mean(d[FO][:, -1]) - np.mean(d[PO][:, -1])
    claims.append(Claim(
        id=f"fo-sharper-than-po-{algo}", section="Fig. 1b", figure=fig,
        paper="Sharper policy boundaries for FO than for PO",
        statistic=f"{name}: mean final decisiveness FO − PO", value=_v(diff),
        threshold="> 0 with Welch t-test p < 0.05", n=len(d[FO]) + len(d[PO]), p_value=_p(w.pvalue),
        holds=decide(diff, above=0.0, p_value=_p(w.pvalue), alpha=ALPHA)))
    ratios = {}
    for task in (PO, FO):
        a = result["tasks"][task]["analysis"]
        speed = np.abs(a["landscape_theta_dots"])
        mu = np.abs(np.clip(a["landscape"][:, -1], -2, 2))  # [P, Gθ, Gθ̇]
        ratios[task] = np.mean(mu[..., speed >= 6], axis=(1, 2)) / np.maximum(np.mean(mu[..., speed <= 2], axis=(1, 2)),
                                                                             1e-6)
    value = float(np.mean(ratios[FO]))
    claims.append(Claim(
        id=f"fo-low-torque-high-speed-{algo}", section="Fig. 1b", figure=fig,
        paper="FO agents use θ̇: near-zero torques at high |θ̇|",
        statistic=f"{name}: final FO agents, mean |μ| at |θ̇| >= 6 rad/s ÷ mean |μ| at |θ̇| <= 2 (mean over seeds)",
        value=_v(value), threshold="< 0.5", n=len(ratios[FO]), holds=decide(value, below=0.5),
        baseline={"PO agents, same ratio": _v(np.mean(ratios[PO]))}))
    return claims


def geometry_claims(result, algo: str, name: str, notes: dict) -> list[Claim]:
    a = result["tasks"][PO]["analysis"]
    updates = np.asarray(result["snapshot_updates"], float)
    n = len(a["seeds"])
    claims = []
    gain = a["ring_score"][:, -1] - a["ring_untrained_same_inputs"]
    t = stats.ttest_1samp(gain, 0.05, alternative="greater") if n > 1 else None
    p = _p(t.pvalue) if t is not None else None
    claims.append(Claim(
        id=f"ring-beyond-inputs-{algo}", section="Fig. 1c", figure=f"fig1c_ring_{algo}.png",
        paper="In PO agents, training prunes the recurrent dynamics into a ring that represents θ",
        statistic=f"{name}: final ring score minus that of the same seed's untrained network driven by the same "
                  "observations (mean over PO seeds)",
        value=_v(np.mean(gain)), threshold="> 0.05 with one-sided t-test (vs 0.05) p < 0.05", n=n, p_value=p,
        holds=decide(np.mean(gain), above=0.05, p_value=p, alpha=ALPHA),
        baseline={"untrained, same inputs (mean)": _v(np.mean(a["ring_untrained_same_inputs"])),
                  "trained final (mean)": _v(np.mean(a["ring_score"][:, -1]))}))
    found = a["goal_fp_found"]
    frac = float(np.mean(found[:, -1]))
    claims.append(Claim(
        id=f"stable-goal-fp-{algo}", section="Fig. 1c", figure=f"fig1c_ring_{algo}.png",
        paper="A stable FP associated with the upright pendulum emerges during training",
        statistic=f"{name}: fraction of PO seeds with a stable FP under the goal observation at the final snapshot",
        value=frac, threshold=">= 0.8", n=n, holds=bool(frac >= 0.8),
        baseline={"at the first snapshot": float(np.mean(found[:, 0]))}))
    rhos = []
    for i in range(n):
        ok = np.isfinite(a["fp_goal_distance"][i])
        if ok.sum() >= 4:
            rhos.append(stats.spearmanr(updates[ok], a["fp_goal_distance"][i][ok]).statistic)
    rhos = np.array([r for r in rhos if np.isfinite(r)])
    if len(rhos) >= 2:
        t = stats.ttest_1samp(rhos, 0.0, alternative="less")
        claims.append(Claim(
            id=f"fp-approaches-goal-{algo}", section="Fig. 1c", figure=f"fig1d_fp_{algo}.png",
            paper="The stable FP moves across state space, gradually approaching the goal location",
            statistic=f"{name}: mean over PO seeds of Spearman ρ(iteration, distance of the stable goal FP to the goal "
                      "location)", value=_v(np.mean(rhos)), threshold="< 0 with one-sided t-test p < 0.05",
            n=len(rhos), p_value=_p(t.pvalue), holds=decide(np.mean(rhos), below=0.0, p_value=_p(t.pvalue), alpha=ALPHA),
            note=f"{n - len(rhos)} of {n} seeds lack 4 snapshots with both a stable goal FP and goal visits"
            if len(rhos) < n else ""))
    else:
        claims.append(Claim(
            id=f"fp-approaches-goal-{algo}", section="Fig. 1c", figure=f"fig1d_fp_{algo}.png",
            paper="The stable FP moves across state space, gradually approaching the goal location",
            statistic=f"{name}: mean Spearman ρ(iteration, stable-FP-to-goal distance)", value=None,
            threshold="< 0 with one-sided t-test p < 0.05", n=len(rhos), holds=None,
            note=f"only {len(rhos)} of {n} PO seeds have >= 4 snapshots with a stable goal FP and goal visits"))
    claims.append(_hanging_claim(a, updates, algo, name))
    claims.append(_proximity_claim(a, algo, name, notes))
    claims.append(_tau_claim(a, updates, algo, name))
    return claims


def _first_for_good(flags: np.ndarray, updates: np.ndarray) -> float:
    """The iteration from which ``flags`` stays true to the end (NaN if false at the end)."""
    if not flags[-1]:
        return np.nan
    off = np.flatnonzero(~flags)
    return float(updates[off[-1] + 1]) if len(off) else float(updates[0])


def _hanging_claim(a, updates, algo, name) -> Claim:
    unstable = a["hanging_fp_found"] & (a["hanging_fp_unstable_dims"] > 0)
    frac = float(np.mean(unstable[:, -1]))
    later = [(_first_for_good(unstable[i], updates), _first_for_good(a["goal_fp_found"][i], updates))
             for i in range(len(unstable))]
    pairs = [(h, g) for h, g in later if np.isfinite(h) and np.isfinite(g)]
    n_later = sum(h > g for h, g in pairs)
    ok = frac >= 0.8 and len(pairs) > 0 and n_later > len(pairs) / 2
    return Claim(
        id=f"hanging-fp-later-{algo}", section="Fig. 1c", figure=f"fig1c_ring_{algo}.png",
        paper="An unstable FP for the free-hanging pendulum emerges later in training than the stable goal FP",
        statistic=f"{name}: fraction of PO seeds with an unstable FP under the hanging observation at the final "
                  f"snapshot (it appeared for good after the stable goal FP in {n_later} of {len(pairs)} seeds with both)",
        value=frac, threshold=">= 0.8, and later than the goal FP in most seeds with both", n=len(unstable),
        holds=bool(ok))


def _proximity_claim(a, algo, name, notes) -> Claim:
    from jaxrnn.analysis import policy
    from jaxrnn.analysis.stats import linear_regression

    d = fp_distance_to_final(a)[:, :-1]
    r = np.asarray(policy.reward_to_go(a["episode_return"]))[:, :-1]
    ok = np.isfinite(d) & np.isfinite(r)
    common = dict(id=f"fp-proximity-reward-{algo}", section="Fig. 1d", figure=f"fig1d_fp_{algo}.png",
                  paper="The stable FP's proximity to its final state correlates with reward-to-go (5 seeds)",
                  threshold="r > 0 with p < 0.05")
    if ok.sum() < 3:
        return Claim(**common, statistic=f"{name}: Pearson r of reward-to-go vs FP distance to its final position",
                     value=None, n=int(ok.sum()), holds=None,
                     note=notes.get("fp_regression", "fewer than 3 (distance, reward-to-go) pairs"))
    fit = linear_regression(d.ravel(), r.ravel())
    missing = int((~a["goal_fp_found"][:, -1]).sum())
    return Claim(**common, statistic=f"{name}: Pearson r of reward-to-go vs distance of the stable goal FP to its final "
                 f"position, PO seeds × snapshots pooled (OLS slope {float(fit.slope):.3g})",
                 value=_v(fit.r), n=int(fit.n), p_value=_p(fit.p),
                 holds=decide(float(fit.r), above=0.0, p_value=_p(fit.p), alpha=ALPHA),
                 note=(f"{missing} of {len(d)} seeds have no stable goal FP at the final snapshot and drop out; " if missing
                       else "") + "snapshots of one seed are not independent, so p overstates the evidence")


def _tau_claim(a, updates, algo, name) -> Claim:
    tau1 = a["tau_mean"][..., 0]  # [P, S]
    u = updates / updates[-1]
    coefs = np.array([np.polyfit(u, tau1[i], 2) for i in range(len(tau1))])  # (c, b, a) per seed
    c = coefs[:, 0]
    vertex = np.where(c != 0, -coefs[:, 1] / (2 * np.where(c != 0, c, 1.0)), np.nan)
    inside = float(np.mean((vertex > 0.1) & (vertex < 0.9) & (c < 0)))
    t = stats.ttest_1samp(c, 0.0, alternative="less") if len(c) > 1 else None
    p = _p(t.pvalue) if t is not None else None
    ok = decide(np.mean(c), below=0.0, p_value=p, alpha=ALPHA)
    return Claim(
        id=f"explore-then-compress-{algo}", section="Fig. 1e", figure=f"fig1e_timescales_{algo}.png",
        paper="τ first increases (explore) then decreases (compress) over training (PO)",
        statistic=f"{name}: curvature c of a quadratic fit of mean τ1 vs training fraction, mean over PO seeds "
                  f"(vertex inside the middle 80 % for {inside:.0%} of seeds)",
        value=_v(np.mean(c)), threshold="< 0 with one-sided t-test p < 0.05, and vertex inside for >= 60 % of seeds",
        n=len(c), p_value=p, holds=None if ok is None else bool(ok and inside >= 0.6),
        baseline={"mean τ1 first snapshot": _v(np.mean(tau1[:, 0])), "mean τ1 last snapshot": _v(np.mean(tau1[:, -1])),
                  "max over snapshots of the seed-mean τ1": _v(np.max(np.mean(tau1, 0)))},
        note="" if ok is not None else "fewer than 2 seeds")


def claims_for(result, notes: dict) -> list[Claim]:
    algo, name = result["algorithm"], result["name"]
    return learning_claims(result, algo, name) + policy_claims(result, algo, name) + geometry_claims(
        result, algo, name, notes)


def missing_algorithm_claims(algo: str, name: str) -> list[Claim]:
    """One row saying the algorithm was not run (the paper's own algorithm is SAC-like)."""
    return [Claim(id=f"learns-{algo}", section="Methods", figure="", paper="Agents trained with the paper's "
                  "algorithm family (recurrent off-policy actor-critic, Ni et al. 2021)",
                  statistic=f"{name}: mean final return", value=None, threshold=">= -250", n=0, holds=None,
                  note=f"{name} is not in this installation (rule 'recurrent_sac' or config 'huang-pendulum-sac' "
                  "missing); its claims were not computed")]
