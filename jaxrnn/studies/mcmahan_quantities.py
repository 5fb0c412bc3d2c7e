"""The quantities of McMahan et al.'s (2021) figures, computed from the analysed members.

:func:`quantities` turns the member table and the two analyses (trained, update 0) into one
nested dict that the figures draw and the claims read. Every separation is a
:class:`~jaxrnn.studies.mcmahan_stats.StatResult` pair ``{"trained", "untrained"}`` — the same
statistic on the same networks before learning — and carries its permutation p-value.

Which members enter which quantity (only members that met the criterion are analysed):

- Fig. 1 (3.1): RDM and CDI at the study noise :data:`FIG_NOISE` (0.5), all four rules.
  SVCCA silhouette by rule; the Hebbian gap (mean SVCCA distance Hebbian-to-others minus
  within-others); the SVCCA silhouette among BPTT, GA and full-FORCE; the topology
  silhouette by rule.
- Fig. 2 (3.2): BPTT and GA on CDI (N = 2) and N-CDI (N = 3…6) at :data:`FIG_NOISE`: SVCCA
  and topology silhouettes by rule per N, and their slopes against N (rule labels permuted
  within each N).
- Fig. 3 (3.3): RDM and CDI, every noise level, all rules: stable fixed points at the zero
  input per network (Spearman ρ with noise, noise permuted within rules) and the topology
  silhouette by rule per noise level, with its slope against noise.
- Fig. 4 (3.3): the same members' integration class (pulse probe: stable vs transient) by
  noise (Spearman ρ of "stable" with noise), and its association with the number of
  zero-input attractors.
- Fig. 5 (3.4): BPTT on RDM, CDI and N-CDI at every noise level: SVCCA and topology
  silhouettes by noise level per task, and their slopes against N.
"""

from __future__ import annotations

import zlib

import jax
import numpy as np

from jaxrnn.studies.mcmahan_analysis import RULES, zero_input_attractors
from jaxrnn.studies.mcmahan_config import FIG_NOISE
from jaxrnn.studies import mcmahan_stats as st

SIMPLE = ("rdm", "cdi")


def _block(result, name: str, idx: np.ndarray) -> np.ndarray:
    return np.asarray(result[name].values)[np.ix_(idx, idx)]


class _Keys:
    """Deterministic keys, one per named statistic (independent of the order of computation)."""

    def __init__(self, seed: int):
        self.base = jax.random.key(seed)

    def __call__(self, *name) -> jax.Array:
        return jax.random.fold_in(self.base, zlib.crc32("/".join(map(str, name)).encode()) % (2 ** 31))


def _pair(fn, trained, untrained, *args, **kwargs) -> dict:
    return {"trained": fn(trained, *args, **kwargs), "untrained": fn(untrained, *args, **kwargs)}


def _separation(result, metric: str, idx, labels, key, convention, B, strata=None) -> st.StatResult:
    conv = (st.SVCCA_CONVENTION if metric == "svcca" else st.TOPOLOGY_CONVENTION)[convention]
    return st.silhouette_test(_block(result, f"{metric}_distance", idx), labels, key, convention=conv,
                              num_permutations=B, strata=strata)


def _trend(result, metric, blocks, xs, key, convention, B, alternative) -> st.StatResult:
    conv = (st.SVCCA_CONVENTION if metric == "svcca" else st.TOPOLOGY_CONVENTION)[convention]
    return st.trend_test([_block(result, f"{metric}_distance", idx) for idx, _ in blocks],
                         [lab for _, lab in blocks], xs, key, convention=conv, num_permutations=B,
                         alternative=alternative)


def quantities(table: dict, trained, untrained, *, convention: str = "rows", num_permutations: int = 1000,
               seed: int = 0) -> dict:
    """All figure quantities (see the module docstring); ``table`` is the full member table."""
    keys = _Keys(seed)
    B = num_permutations
    met = np.flatnonzero(table["met"])
    sel = {k: np.asarray(v)[met] for k, v in table.items()}  # aligned with the analyses' members
    q = {"convention": convention, "num_permutations": B, "selected": met}
    if trained is None:
        return q
    attractors = {"trained": zero_input_attractors(trained), "untrained": zero_input_attractors(untrained)}
    stable = {"trained": np.asarray(trained.integration_class.values),
              "untrained": np.asarray(untrained.integration_class.values)}
    q["attractors"], q["integration_class"] = attractors, stable
    both = {"trained": trained, "untrained": untrained}

    def at(**conditions):
        mask = np.ones(len(met), bool)
        for field, value in conditions.items():
            mask &= np.isin(sel[field], np.atleast_1d(value))
        return np.flatnonzero(mask)

    # Fig. 1
    q["fig1"] = {}
    for task in SIMPLE:
        idx = at(task=task, noise=FIG_NOISE)
        rules = sel["rule"][idx]
        others = idx[rules != "hebbian"]
        entry = {"idx": idx, "counts": {r: int(np.sum(rules == r)) for r in RULES}}
        for metric in ("svcca", "topology"):
            entry[metric] = {s: _separation(r, metric, idx, rules, keys("fig1", task, metric, s), convention, B)
                             for s, r in both.items()}
        entry["svcca_others"] = {s: _separation(r, "svcca", others, sel["rule"][others],
                                                keys("fig1", task, "others", s), convention, B)
                                 for s, r in both.items()}
        entry["hebbian_gap"] = {s: st.group_gap_test(_block(r, "svcca_distance", idx), rules == "hebbian",
                                                     keys("fig1", task, "gap", s), num_permutations=B)
                                for s, r in both.items()}
        q["fig1"][task] = entry

    # Fig. 2: BPTT vs GA against the number of contexts.
    fig2 = {"n": [], "blocks": []}
    for n in range(2, 7):
        idx = at(contexts=n, noise=FIG_NOISE, rule=["bptt", "ga"])
        labels = sel["rule"][idx]
        entry = {"idx": idx, "counts": {r: int(np.sum(labels == r)) for r in ("bptt", "ga")}}
        for metric in ("svcca", "topology"):
            entry[metric] = {s: _separation(r, metric, idx, labels, keys("fig2", n, metric, s), convention, B)
                             for s, r in both.items()}
        fig2[n] = entry
        fig2["n"].append(n)
        fig2["blocks"].append((idx, labels))
    for metric, alternative in (("svcca", "greater"), ("topology", "two-sided")):
        fig2[f"{metric}_trend"] = {s: _trend(r, metric, fig2["blocks"], fig2["n"], keys("fig2", metric, "trend", s),
                                             convention, B, alternative) for s, r in both.items()}
    q["fig2"] = fig2

    # Figs. 3 and 4: noise, per simple task, all rules.
    q["fig3"], q["fig4"] = {}, {}
    for task in SIMPLE:
        idx = at(task=task)
        levels = sorted(np.unique(sel["noise"][idx]).tolist())
        noise, rules = sel["noise"][idx], sel["rule"][idx]
        f3 = {"idx": idx, "levels": levels, "by_noise": {}}
        f3["attractor_rho"] = {s: st.spearman_test(noise, attractors[s][idx], keys("fig3", task, "rho", s),
                                                   num_permutations=B, strata=st.encode(rules)) for s in both}
        blocks = []
        for level in levels:
            sub = idx[noise == level]
            f3["by_noise"][level] = {s: _separation(r, "topology", sub, sel["rule"][sub],
                                                    keys("fig3", task, level, s), convention, B)
                                     for s, r in both.items()}
            blocks.append((sub, sel["rule"][sub]))
        f3["topology_trend"] = {s: _trend(r, "topology", blocks, levels, keys("fig3", task, "trend", s),
                                          convention, B, "less") for s, r in both.items()}
        q["fig3"][task] = f3
        is_stable = {s: (stable[s][idx] == 1).astype(float) for s in both}
        q["fig4"][task] = {
            "idx": idx, "levels": levels,
            "stable_rho": {s: st.spearman_test(noise, is_stable[s], keys("fig4", task, "rho", s),
                                               num_permutations=B, strata=st.encode(rules)) for s in both}}
    idx = at(task=list(SIMPLE))
    q["fig4"]["attractor_link"] = {
        s: st.spearman_test(attractors[s][idx], (stable[s][idx] == 1).astype(float), keys("fig4", "link", s),
                            num_permutations=B, strata=st.encode(sel["task"][idx])) for s in both}

    # Fig. 5: BPTT, noise x complexity.
    fig5 = {"n": [], "blocks": []}
    for n in range(1, 7):
        idx = at(contexts=n, rule="bptt")
        labels = sel["noise"][idx]
        entry = {"idx": idx, "counts": {float(v): int(np.sum(labels == v)) for v in np.unique(labels)}}
        for metric in ("svcca", "topology"):
            entry[metric] = {s: _separation(r, metric, idx, labels, keys("fig5", n, metric, s), convention, B)
                             for s, r in both.items()}
        fig5[n] = entry
        fig5["n"].append(n)
        fig5["blocks"].append((idx, labels))
    for metric in ("svcca", "topology"):
        fig5[f"{metric}_trend"] = {s: _trend(r, metric, fig5["blocks"], fig5["n"], keys("fig5", metric, "trend", s),
                                             convention, B, "less") for s, r in both.items()}
    q["fig5"] = fig5
    q["sel"] = sel
    return q
