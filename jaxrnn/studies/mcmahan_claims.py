"""McMahan et al. (2021), sections 3.1–3.4, as a claims table: one row per finding.

Every threshold below was fixed when this file was written, before any run it judges; the
constants are the whole decision rule. ``ALPHA`` is the permutation test's level; a
silhouette is "near zero" when ``|s| < NEAR_ZERO``; "largely overlapping" is a silhouette
below ``OVERLAP`` (Kaufman & Rousseeuw's "no substantial structure"); "learned" means at
least ``LEARNED`` of the members of a cell met the 90 % criterion within the budget. Each row
carries its baselines: the same statistic on the same networks at update 0 (``untrained``)
and the permutation null's mean (``null_mean``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxrnn.studies.claims import Claim
from jaxrnn.studies.mcmahan_analysis import RULE_NAMES, RULES
from jaxrnn.studies.mcmahan_config import FIG_NOISE, STUDY_NOISE
from jaxrnn.studies.mcmahan_stats import StatResult

ALPHA = 0.05
NEAR_ZERO = 0.1
OVERLAP = 0.25
LEARNED = 0.9
TASK_NAMES = {"rdm": "RDM", "cdi": "CDI"}


def _baseline(pair: dict) -> dict:
    t, u = pair["trained"], pair["untrained"]
    return {"untrained": u.value, "untrained_p": u.p_value, "null_mean": t.null_mean}


def _row(cid, section, figure, paper, statistic, pair, threshold, holds_fn, note="") -> Claim:
    t: StatResult = pair["trained"]
    if not t.ok:
        return Claim(cid, section, figure, paper, statistic, None, threshold, t.n, None,
                     baseline=_baseline(pair), note=(note + " " if note else "") + f"not computed: {t.note}")
    holds = bool(holds_fn(t.value, t.p_value))
    note = " ".join(x for x in (note, t.note) if x)
    return Claim(cid, section, figure, paper, statistic, t.value, threshold, t.n, holds, p_value=t.p_value,
                 baseline=_baseline(pair), note=note)


def significant_above(v, p):
    return v > 0 and p < ALPHA


def significant_below(v, p):
    return v < 0 and p < ALPHA


def learning_claims(table: dict) -> list[Claim]:
    """Which rules met the criterion on RDM and CDI, at the Fig. 1 noise and at every noise level."""
    rows = []
    simple = np.isin(table["task"], ("rdm", "cdi"))
    for cid, levels, what in (("all-rules-learn", [FIG_NOISE], f"at the study noise {FIG_NOISE} of Fig. 1"),
                              ("all-rules-learn-every-noise", list(STUDY_NOISE), "at every noise level")):
        fractions, cells = {}, 0
        for rule in RULES:
            for task in ("rdm", "cdi"):
                for level in levels:
                    m = simple & (table["rule"] == rule) & (table["task"] == task) & np.isclose(table["noise"], level)
                    if m.any():
                        fractions[(rule, task, level)] = float(np.mean(table["met"][m]))
                        cells += int(m.sum())
        missing = [f"{RULE_NAMES[r]}/{TASK_NAMES[t]}" for r in RULES for t in ("rdm", "cdi")
                   if not any(k[:2] == (r, t) for k in fractions)]
        short = [f"{RULE_NAMES[r]} {TASK_NAMES[t]} σ={lv:g}: {f:.2f}" for (r, t, lv), f in fractions.items() if f < LEARNED]
        value = min(fractions.values()) if fractions else None
        note = ("below: " + "; ".join(short)) if short else ""
        if missing:
            note = (note + "; " if note else "") + "no members for " + ", ".join(missing)
        if cid == "all-rules-learn-every-noise":
            note = (note + ". " if note else "") + ("At σ = 1.0 the criterion is within 1.3 points of the ideal observer "
                                                   "(best possible accuracy 0.913 on the validation grid).")
        holds = None if value is None else (value >= LEARNED and not missing)
        rows.append(Claim(cid, "3.1", "fig0_learning.png",
                          "All RNNs performed RDM and CDI with > 90 % accuracy, with each of the four rules",
                          f"smallest fraction of members meeting the criterion (min of the last validations ≥ 0.9) "
                          f"over rule × task {what}", value, f">= {LEARNED} in every cell", cells, holds,
                          note=note or ("" if value is not None else "no members trained")))
    return rows


def claims(q: dict, table: dict, convention: str) -> list[Claim]:
    """The claims rows from :func:`~jaxrnn.studies.mcmahan_quantities.quantities`."""
    rows = learning_claims(table)
    if "fig1" not in q:
        reason = "no member met the criterion, so nothing was analysed"
        return rows + [Claim("analyses", "3.1–3.4", "", "the paper's analyses", "all", None, "—", 0, None,
                             note=reason)]
    conv = {"rows": "authors' convention: distance rows as features", "precomputed": "distances as distances"}[convention]
    for task in ("rdm", "cdi"):
        f1, name = q["fig1"][task], TASK_NAMES[task]
        rows.append(_row(f"svcca-hebbian-apart-{task}", "3.1", "fig1ab_svcca.png",
                         f"{name}: Hebbian representations overlap less with BPTT, GA and FF than those do with each other",
                         "mean SVCCA distance Hebbian-to-others minus mean within BPTT/GA/FF", f1["hebbian_gap"],
                         f"> 0 with permutation p < {ALPHA}", significant_above))
        rows.append(_row(f"svcca-others-overlap-{task}", "3.1", "fig1ab_svcca.png",
                         f"{name}: BPTT, GA and FF representations are largely overlapping",
                         f"SVCCA silhouette by rule among BPTT, GA, FF ({conv})", f1["svcca_others"],
                         f"< {OVERLAP}", lambda v, p: v < OVERLAP))
        rows.append(_row(f"topology-universal-{task}", "3.1", "fig1e_topology.png",
                         f"{name}: attractor topologies are indistinguishable across the four learning rules "
                         "(silhouette close to zero)",
                         "attractor-topology silhouette by rule (McMahan signatures)", f1["topology"],
                         f"|s| < {NEAR_ZERO} and permutation p >= {ALPHA}",
                         lambda v, p: abs(v) < NEAR_ZERO and p >= ALPHA))
    f2 = q["fig2"]
    rows.append(_row("svcca-individualistic-with-n", "3.2", "fig2_complexity.png",
                     "BPTT and GA representations cluster by rule more as N-CDI's N grows (Fig. 2c)",
                     f"slope of the SVCCA silhouette (BPTT vs GA, {conv}) against N = 2…6",
                     f2["svcca_trend"], f"> 0 with permutation p < {ALPHA} (labels permuted within each N)",
                     significant_above))
    rows.append(_row("topology-no-trend-with-n", "3.2", "fig2_complexity.png",
                     "BPTT and GA attractor topologies stay shared for every N (no trend with N, Fig. 2e)",
                     "slope of the topology silhouette (BPTT vs GA) against N = 2…6", f2["topology_trend"],
                     f"two-sided permutation p >= {ALPHA}", lambda v, p: p >= ALPHA))
    rows.append(Claim("h-ff-fail-ncdi", "3.2", "", "Hebbian and full-FORCE did not reach the criterion on N-CDI for N > 2",
                      "fraction of Hebbian / full-FORCE members meeting the criterion on N-CDI, N > 2", None,
                      "< 0.5", None, None,
                      note="not trained: the packaged config (the study's 1,920 networks) trains N-CDI with BPTT and GA "
                           "only, as the paper's figures do; Hebbian and full-FORCE on N > 2 were not measured "
                           "(the all-rules-learn rows show how they fare on CDI, N = 2)"))
    for task in ("rdm", "cdi"):
        f3, name = q["fig3"][task], TASK_NAMES[task]
        rows.append(_row(f"attractors-multiply-with-noise-{task}", "3.3", "fig3_noise.png",
                         f"{name}: more input noise, more attractors at small inputs (Fig. 3a, d)",
                         "Spearman ρ of study noise and the number of stable fixed points at zero input, all rules",
                         f3["attractor_rho"], f"> 0 with permutation p < {ALPHA} (noise permuted within rules)",
                         significant_above))
        rows.append(_row(f"topology-rule-clustering-falls-with-noise-{task}", "3.3", "fig3_noise.png",
                         f"{name}: attractor structure clusters by rule less as input noise grows (Fig. 3c, f)",
                         "slope of the topology silhouette by rule against study noise", f3["topology_trend"],
                         f"< 0 with permutation p < {ALPHA} (labels permuted within each noise level)",
                         significant_below))
        rows.append(_row(f"stable-integration-with-noise-{task}", "3.3", "fig4_integration.png",
                         f"{name}: high input noise gives stable integration, low noise transient integration (Fig. 4)",
                         "Spearman ρ of study noise and being a stable integrator (pulse probe), all rules",
                         q["fig4"][task]["stable_rho"], f"> 0 with permutation p < {ALPHA} (noise permuted within rules)",
                         significant_above))
    rows.append(_row("stable-integration-needs-attractors", "3.3", "fig4_integration.png",
                     "Stable integrators have several attractors at zero input; transient ones a single attractor",
                     "Spearman ρ of the number of zero-input attractors and being a stable integrator (RDM and CDI)",
                     q["fig4"]["attractor_link"], f"> 0 with permutation p < {ALPHA} (within task)", significant_above))
    f5 = q["fig5"]
    rows.append(_row("rdm-topology-clusters-by-noise", "3.4", "fig5_noise_complexity.png",
                     "RDM: BPTT networks trained at different noise levels have distinct attractor topologies",
                     "topology silhouette by noise level, BPTT on RDM", f5[1]["topology"],
                     f"> 0 with permutation p < {ALPHA}", significant_above))
    complex_ns = [n for n in (4, 5, 6) if f5[n]["topology"]["trained"].ok]
    if complex_ns:
        worst = min(complex_ns, key=lambda n: f5[n]["topology"]["trained"].p_value)
        pair = dict(f5[worst]["topology"])
        pair["trained"] = StatResult(pair["trained"].value, pair["trained"].p_value, pair["trained"].null_mean,
                                 n=sum(f5[n]["topology"]["trained"].n for n in complex_ns),
                                 note=f"the N = 4…6 block with the smallest p is N = {worst} (shown); N with a "
                                      f"silhouette: {complex_ns}")
    else:
        pair = {"trained": StatResult(None, note="no N = 4…6 block with a defined silhouette"),
                "untrained": StatResult(None)}
    trained_ns = sorted({int(c) for c in table["contexts"][table["rule"] == "bptt"]} & {4, 5, 6})
    untrained_ns = [n for n in (4, 5, 6) if n not in trained_ns]
    row = _row("topology-noise-invariant-complex", "3.4", "fig5_noise_complexity.png",
               "N-CDI with N > 3: attractor topologies are indistinguishable across the three noise levels",
               "topology silhouette by noise level, BPTT, at the N = 4…6 with the smallest permutation p", pair,
               f"p >= {ALPHA} at every N = 4…6", lambda v, p: p >= ALPHA and len(complex_ns) == 3,
               note="" if len(complex_ns) == 3 else "fewer than three N = 4…6 blocks computed;")
    if untrained_ns and row.holds is not False:  # a p < ALPHA at a trained N already decides it
        row = dataclasses.replace(row, holds=None, note=f"{row.note} N = {untrained_ns} not trained at this scale, "
                                                         "so the rule 'at every N = 4…6' cannot be decided")
    rows.append(row)
    rows.append(_row("topology-noise-clustering-falls-with-n", "3.4", "fig5_noise_complexity.png",
                     "As N grows, attractor topologies cluster less by noise level (Fig. 5c, d)",
                     "slope of the topology silhouette by noise (BPTT) against N = 1 (RDM) … 6", f5["topology_trend"],
                     f"< 0 with permutation p < {ALPHA} (labels permuted within each N)", significant_below))
    rows.append(_row("svcca-noise-overlap-with-n", "3.4", "fig5_noise_complexity.png",
                     "As N grows, representations trained at different noise levels overlap more (Fig. 5a, b)",
                     f"slope of the SVCCA silhouette by noise (BPTT, {conv}) against N = 1 … 6", f5["svcca_trend"],
                     f"< 0 with permutation p < {ALPHA} (labels permuted within each N)", significant_below))
    return rows
