"""McMahan, Kleinman & Kao (NeurIPS 2021): learning rule shapes representations, not attractors.

    from jaxrnn.studies import mcmahan
    doc = mcmahan.reproduce("reproductions/mcmahan")                # CPU scale (the default)
    doc = mcmahan.reproduce("big/", scale="full")                   # the packaged 1,920 networks

or ``jaxrnn reproduce mcmahan [--full]`` / ``python examples/learning_rules.py [--full]``.

1. **Train** the population of :func:`~jaxrnn.studies.mcmahan_config.study_config` — at
   ``"full"`` exactly ``jaxrnn/configs/mcmahan.toml`` (BPTT, GA, Hebbian, full-FORCE; RDM, CDI,
   N-CDI; noise 0.1/0.5/1.0), at ``"cpu"`` the same file with 150-step trials, noise scaled by
   √(150/750) to keep each level's difficulty, 3 seeds, N-CDI at N = 3 and 6 only, smaller batches and caps
   (table in :mod:`~jaxrnn.studies.mcmahan_config`). One run directory, ``out/population``;
   re-running resumes it.
2. **Select** the members that met the study's criterion (min of the last ``stop_window``
   validation accuracies ≥ 0.9). The others are listed in ``members.md`` and left out of every
   analysis; every panel prints its counts.
3. **Analyse** the selected members at their last snapshot and — the untrained baseline — the
   same members at update 0 (:func:`jaxrnn.analysis.pipeline.analyze`: fixed points at the
   paper's small probes, SVCCA, attractor-topology signatures, pulse probe).
4. **Quantities** of Figs. 1–5 (:mod:`~jaxrnn.studies.mcmahan_quantities`), each silhouette
   with a label-permutation null (1,000 permutations; within strata where the design has them)
   and its untrained counterpart. Silhouettes use the authors' convention by default
   (``convention="rows"``: SVCCA distance rows as features, topology signatures as features);
   ``convention="precomputed"`` scores the distances as distances.
5. **Figures** (:data:`FIGURES`) and **claims** (:mod:`~jaxrnn.studies.mcmahan_claims`,
   ``claims.json`` / ``claims.md``), plus ``timing.json`` (wall time per stage, peak RSS).

Measured wall time of the CPU scale (96 networks): **68 min** — training 64 min, analyses,
statistics and figures 3.4 min, peak RSS 2.0 GiB — on the shared 2-core machine at load 7.6–13
(1-min average; three other heavy jobs), 2026-12-03, with
``PYTHONPATH=. nice -n 5 python -c "...mcmahan.reproduce(out, scale='cpu')"`` (killed once at
minute 58 and re-run, which resumed). 47 of 96 networks met the criterion; claims table in
``docs/studies/mcmahan/claims.json``, timings in ``benchmarks/results/mcmahan_reproduction-cpu.json``.
At quiet load it would be several times faster (re-measure there).
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from jaxrnn.analysis.fixed_point_inputs import (CONTEXT_PROBE_MAX, FIGURE1_LEVELS, NUM_PROBES_PER_CONTEXT,
                                                RDM_PROBE_LEVELS, RDM_PROBE_SCALE)
from jaxrnn.analysis.probes import STABLE, TRANSIENT
from jaxrnn.studies.claims import summary_lines, write_claims
from jaxrnn.studies.mcmahan_analysis import (RULE_NAMES, RULES, analyses, attractor_examples, member_table,
                                             pulse_evidence)
from jaxrnn.studies.mcmahan_config import FIG_NOISE, get_scale, study_config

STUDY = "mcmahan-2021"
CONVENTIONS = ("rows", "precomputed")
_CONVENTION_TEXT = {"rows": "authors' convention (SVCCA distance rows / topology signatures as features)",
                    "precomputed": "distances scored as distances"}

_COMMON = ("Only networks that met the 90 % criterion are shown (counts on every panel; the others are listed in "
           "members.md). Noise is in study units (σ of the 750-step task; smaller scales train at σ·√(T/750), "
           "the same ideal-observer difficulty). Every silhouette is printed with its label-permutation p-value, "
           "the permutation null's mean and the same statistic on the same networks at update 0 (untrained). "
           "The header says the scale; at the CPU scale (150-step trials, 3 seeds) a failed or held claim is "
           "evidence about these small populations, not a verdict on the paper.")
FIGURES = {
    "fig0_learning.png": "Learning: fraction of networks meeting the 90 % criterion per rule, task and noise level (top) "
                         "and updates to criterion (bottom, log scale; an update is an Adam step, a GA generation, 10 "
                         "Hebbian trials or one full-FORCE trial, so rules are not comparable in cost). " + _COMMON,
    "fig1ab_svcca.png": "Fig. 1a–b: SVCCA distance matrices of RDM and CDI networks at σ = 0.5, sorted by rule, and "
                        "their classical MDS (drawing only). Titles: the Hebbian gap (mean distance Hebbian-to-others "
                        "minus within BPTT/GA/FF), the silhouette by rule and among BPTT/GA/FF. The untrained value "
                        "says how much of the separation the architecture alone gives (Hebbian networks have other "
                        "input weights, gain 1.5 and tanh units); do not read the MDS distances as exact. " + _COMMON,
    "fig1d_attractors.png": "Fig. 1d: fixed points of one network per rule at the five static inputs u = −0.5 … 0.5, "
                            "in the first two principal components of that network's activity (grey: its trajectories "
                            "under constant inputs). One network each: an illustration, not a statistic. " + _COMMON,
    "fig1e_topology.png": "Fig. 1e: MDS of McMahan's attractor-topology signatures (the input values of the 3 nearest "
                          "fixed points of the first 10 fixed points at small inputs) by rule, RDM and CDI at σ = 0.5, "
                          "with the silhouette by rule. Many networks share one signature, so points are jittered; a "
                          "silhouette near zero with a large p says the rules are not told apart by this signature, "
                          "not that their dynamics are identical. " + _COMMON,
    "fig2_complexity.png": "Fig. 2: BPTT vs GA on N-CDI, N = 2 … 6 (the CPU scale trains N = 2, 3 and 6), at σ = 0.5: SVCCA and topology MDS per N, and the "
                           "silhouettes by rule against N (solid: trained with p; dashed: untrained; dotted: permutation "
                           "null mean) with the slope's permutation test (labels permuted within each N). " + _COMMON,
    "fig3_noise.png": "Fig. 3: input noise and attractors on RDM and CDI. Left: fixed points at the paper's small inputs "
                      "of one BPTT network per noise level. Middle: stable fixed points at zero input per network "
                      "against noise (lines: rule means; dashed: untrained), Spearman ρ with noise (permuted within "
                      "rules). Right: the topology silhouette by rule per noise level with its slope. " + _COMMON,
    "fig4_integration.png": "Fig. 4: integration strategy. A noise-free pulse of evidence for half a training trial, "
                            "then silence for four trial lengths: a network is a stable integrator if at least half of "
                            "its read-out evidence survives to the end (a leak would need a time constant of ≥ 5.8 "
                            "trials), transient otherwise. Left: example responses; middle: strategy by "
                            "noise (all rules); right: by rule. Header: rank correlation of zero-input attractors and "
                            "stable integration. " + _COMMON,
    "fig5_noise_complexity.png": "Fig. 5: noise × complexity for BPTT: SVCCA and topology MDS coloured by noise level "
                                 "for RDM (N = 1), CDI and N-CDI up to N = 6 (CPU scale: N = 1, 2, 3, 6), and the silhouettes by noise level "
                                 "against N with the slope's permutation test. " + _COMMON,
}


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _write_members(path: Path, table: dict) -> None:
    lines = ["# Members and the criterion", "", "| rule | task | study σ | trained | met | not met |",
             "|---|---|---|---|---|---|"]
    keys = sorted({(r, t, n) for r, t, n in zip(table["rule"], table["task"], table["noise"])},
                  key=lambda k: (RULES.index(k[0]) if k[0] in RULES else 9, k[1], k[2]))
    for rule, task, noise in keys:
        m = (table["rule"] == rule) & (table["task"] == task) & (table["noise"] == noise)
        lines.append(f"| {RULE_NAMES.get(rule, rule)} | {task} | {noise:g} | {m.sum()} | {np.sum(table['met'][m])} | "
                     f"{np.sum(~table['met'][m])} |")
    lines += ["", "## Members that did not meet the criterion (left out of every analysis)", "",
              "| member | rule | task | study σ | seed | last validation accuracy | diverged |", "|---|---|---|---|---|---|---|"]
    for m in np.flatnonzero(~table["met"]):
        lines.append(f"| {m} | {RULE_NAMES.get(table['rule'][m], table['rule'][m])} | {table['task'][m]} | "
                     f"{table['noise'][m]:g} | {table['seed'][m]} | {table['final_accuracy'][m]:.3f} | "
                     f"{bool(table['diverged'][m])} |")
    path.write_text("\n".join(lines) + "\n")


def _first(mask: np.ndarray):
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _small_levels(task: str) -> np.ndarray:
    if task == "rdm":
        return np.sort(RDM_PROBE_SCALE * np.asarray(RDM_PROBE_LEVELS))
    return np.linspace(-CONTEXT_PROBE_MAX, CONTEXT_PROBE_MAX, NUM_PROBES_PER_CONTEXT)


def _examples(dataset, table, q, num_steps: int, scale) -> tuple[dict, dict, dict]:
    """Fig. 1d (one network per rule), Fig. 3a/d (one BPTT network per noise level), Fig. 4 traces."""
    met = table["met"]
    fig1, fig3, traces = {}, {}, {}
    options = dict(num_steps=num_steps, num_starts=max(32, scale.num_starts), max_iters=scale.max_iters)
    for task in ("rdm", "cdi"):
        for rule in RULES:
            m = _first(met & (table["task"] == task) & (table["rule"] == rule) & (table["noise"] == FIG_NOISE))
            if m is not None:
                fig1[(task, rule)] = attractor_examples(dataset, [m], levels=FIGURE1_LEVELS, **options)[0]
        for level in sorted(set(table["noise"][table["task"] == task].tolist())):
            m = _first(met & (table["task"] == task) & (table["rule"] == "bptt") & (table["noise"] == level))
            if m is not None:
                fig3[(task, level)] = attractor_examples(dataset, [m], levels=_small_levels(task), **options)[0]
        if "sel" in q:
            sel, classes = q["sel"], q["integration_class"]["trained"]
            for kind, code, order in (("transient", TRANSIENT, 1), ("stable", STABLE, -1)):
                k = [k for k in np.argsort(order * sel["noise"], kind="stable")
                     if sel["task"][k] == task and classes[k] == code]
                if k:
                    member = int(q["selected"][k[0]])
                    traces[(task, kind)] = (member, pulse_evidence(dataset, [member], num_steps=num_steps)[0])
    return fig1, fig3, traces


def reproduce(out, *, scale: str = "cpu", quiet: bool = False, convention: str = "rows") -> dict:
    """Train, analyse, draw and judge McMahan et al. (2021) at ``scale``; returns the claims document.

    Args:
      out: directory for ``population/`` (the resumable run), analyses, figures, ``claims.json``,
        ``claims.md``, ``members.md``, ``timing.json`` and ``config.toml`` (what was trained).
      scale: ``"test"`` (tiny, for tests), ``"cpu"`` (default) or ``"full"`` (the packaged config).
      quiet: no progress bars or summary.
      convention: silhouette convention, ``"rows"`` (the authors') or ``"precomputed"``.
    """
    scale_obj = get_scale(scale)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention = {convention!r} is not allowed: must be one of {list(CONVENTIONS)}")
    from jaxrnn import population

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times, start, load_at_start = {}, time.perf_counter(), list(os.getloadavg())
    raw, text = study_config(scale_obj)
    (out / "config.toml").write_text(text)
    config = population.from_dict(raw, source=text, name=raw["run"].get("name", "mcmahan"))
    dataset = population.run(config, out=out / "population", quiet=quiet)
    times["train_s"] = time.perf_counter() - start
    num_steps = scale_obj.num_steps or 750
    table = member_table(dataset, scale_obj)
    _write_members(out / "members.md", table)

    # One BLAS thread for the analyses' stacks of small eigen/SVD problems: OpenBLAS's threads spin
    # on a loaded machine (the Ger & Barak analyses measured 50x slower eigvals with 2 threads at load 8).
    with threadpool_limits(1, user_api="blas"):
        return _analyse_and_report(out, dataset, table, scale, scale_obj, convention, num_steps, times, start,
                                   load_at_start, quiet)


def _analyse_and_report(out, dataset, table, scale, scale_obj, convention, num_steps, times, start, load_at_start,
                        quiet) -> dict:
    from jaxrnn.studies import mcmahan_claims, mcmahan_figures as figs, mcmahan_figures_noise as figs_noise
    from jaxrnn.studies.mcmahan_quantities import quantities

    t0 = time.perf_counter()
    trained, untrained = analyses(dataset, table, out, scale_obj, num_steps)
    times["analysis_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    q = quantities(table, trained, untrained, convention=convention, num_permutations=scale_obj.num_permutations)
    times["statistics_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_met, n = int(table["met"].sum()), len(table["met"])
    steps = f"T = {num_steps} steps" + ("" if scale == "full" else f", noise × {scale_obj.noise_factor:.3f}")
    context = {"convention": _CONVENTION_TEXT[convention],
               "line": f"scale {scale!r} ({steps}): {n_met} of {n} networks met the criterion; silhouettes: "
                       f"{_CONVENTION_TEXT[convention]}; {scale_obj.num_permutations} permutations"}
    figs.fig0_learning(out / "fig0_learning.png", table, context)
    if trained is not None:
        fig1, fig3, traces = _examples(dataset, table, q, num_steps, scale_obj)
        figs.fig1ab_svcca(out / "fig1ab_svcca.png", q, trained, context)
        figs.fig1d_attractors(out / "fig1d_attractors.png", fig1, context)
        figs.fig1e_topology(out / "fig1e_topology.png", q, trained, context)
        figs.fig2_complexity(out / "fig2_complexity.png", q, trained, context)
        figs_noise.fig3_noise(out / "fig3_noise.png", q, fig3, context)
        figs_noise.fig4_integration(out / "fig4_integration.png", q, traces, num_steps, context)
        figs_noise.fig5_noise_complexity(out / "fig5_noise_complexity.png", q, trained, context)
    times["figures_s"] = time.perf_counter() - t0

    command = "jaxrnn reproduce mcmahan" + {"full": " --full", "cpu": "", "test": " (scale='test')"}[scale]
    doc = write_claims(out, STUDY, scale, command, mcmahan_claims.claims(q, table, convention))
    times["total_s"] = time.perf_counter() - start
    updates = {rule: {"median": float(np.median(table["converged_update"][table["met"] & (table["rule"] == rule)]))
                      if np.any(table["met"] & (table["rule"] == rule)) else None,
                      "met": int(np.sum(table["met"] & (table["rule"] == rule))),
                      "members": int(np.sum(table["rule"] == rule))} for rule in RULES}
    timing = {"scale": scale, "seconds": times, "peak_rss_bytes": _peak_rss_bytes(),
              "loadavg_at_start": load_at_start, "loadavg_at_end": list(os.getloadavg()), "updates_to_criterion": updates, "members": n, "met": n_met}
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    if not quiet:
        print("\n".join(summary_lines(doc)))
        print(f"wrote {out}: figures, claims.md, members.md ({n_met}/{n} met the criterion), "
              f"{times['total_s']:.0f} s")
    return doc
