"""The McMahan et al. (2021) reproduction's analyses of a trained population.

    table = member_table(dataset, scale)            # rule, task, study noise, met the criterion, ...
    trained, untrained = analyses(dataset, table, out, scale)   # analyze() at the last and at update 0
    examples = attractor_examples(dataset, members, snapshot=-1)  # Fig. 1d: five probe inputs
    evidence = pulse_evidence(dataset, members, num_steps)        # Fig. 4a, d

Only members that met the study's criterion (min of the last ``stop_window`` validation
accuracies ≥ ``stop_threshold``, the runner's ``converged_update ≥ 0``) are analysed; the
untrained baseline is the **same members** at snapshot 0 (update 0), so every statistic has a
counterpart on the same networks before learning. Both analyses are cached under ``out`` as
NetCDF and reused when the member list and options are unchanged (a re-run resumes).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

import jaxrnn
from jaxrnn.analysis.fixed_point_inputs import FIGURE1_LEVELS, level_inputs
from jaxrnn.analysis.pipeline import analyze, condition_activity, condition_inputs, probe_fixed_points
from jaxrnn.analysis.stored_networks import CTRNNStep, LinearReadout, group_params, member_specs
from jaxrnn.analysis.probes import integration_probe_population, pulse_inputs
from jaxrnn.studies.mcmahan_config import Scale

RULES = ("bptt", "ga", "hebbian", "full_force")
RULE_NAMES = {"bptt": "BPTT", "ga": "GA", "hebbian": "Hebbian", "full_force": "full-FORCE"}


def contexts_of(task: str) -> int:
    """Number of contexts ``N`` of a task name (RDM: 1, CDI: 2, ``ncdi-n``: n)."""
    return 1 if task == "rdm" else 2 if task == "cdi" else int(task.split("-")[1])


def member_table(dataset: xr.Dataset, scale: Scale) -> dict[str, np.ndarray]:
    """Per-member arrays: ``rule``, ``task``, ``contexts``, ``noise`` (study units), ``seed``,
    ``converged_update``, ``final_accuracy`` (last validation), ``met`` (met the criterion)."""
    rule = np.asarray(dataset["rule.name"].values).astype(str)
    task = np.asarray(dataset["task.name"].values).astype(str)
    std = np.asarray(dataset["task.noise_std"].values, float)
    acc = np.asarray(dataset["val_accuracy"].values, float)
    final = np.array([row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in acc])
    converged = np.asarray(dataset["converged_update"].values).astype(int)
    diverged = np.asarray(dataset["diverged"].values).astype(bool) if "diverged" in dataset else np.zeros(len(rule), bool)
    return {"rule": rule, "task": task, "contexts": np.array([contexts_of(t) for t in task]),
            "noise": np.round(std / scale.noise_factor, 3), "std": std,
            "seed": np.asarray(dataset["seed"].values).astype(int), "converged_update": converged,
            "final_accuracy": final, "met": (converged >= 0) & ~diverged, "diverged": diverged}


#: The pulse probe (Fig. 4): evidence on for half a training trial (the paper turned the inputs
#: off "midway through the trial"), then read DELAY_TRIALS trial lengths later. A stable
#: integrator keeps ≥ ½ of it; a leak keeps ½ only with a time constant ≥ 4T/ln 2 ≈ 5.8 T, so a
#: slow leak that merely outlasts one trial is not mistaken for a stable memory.
DELAY_TRIALS = 4


def probe_design(num_steps: int) -> tuple[int, int]:
    """``(pulse, probe_steps)`` of the integration probe for training trials of ``num_steps``."""
    pulse = max(1, num_steps // 2)
    return pulse, pulse + DELAY_TRIALS * num_steps


def _options(scale: Scale, num_steps: int) -> dict:
    pulse, probe_steps = probe_design(num_steps)
    return dict(num_starts=scale.num_starts, num_steps=num_steps, max_iters=scale.max_iters, max_fps=16,
                pulse=pulse, probe_steps=probe_steps)


def _cached(path: Path, key: dict, compute) -> xr.Dataset:
    if path.exists():
        cached = xr.load_dataset(path)
        if cached.attrs.get("study_key") == json.dumps(key, sort_keys=True):
            return cached
    result = compute()
    result.attrs["study_key"] = json.dumps(key, sort_keys=True)
    tmp = path.with_suffix(".tmp.nc")
    result.to_netcdf(tmp)
    tmp.replace(path)
    return result


def analyses(dataset: xr.Dataset, table: dict, out: Path, scale: Scale,
             num_steps: int) -> tuple[xr.Dataset | None, xr.Dataset | None]:
    """:func:`analyze` of the members that met the criterion, at their last snapshot and at update 0.

    ``member`` of both results indexes the *selected* members; ``source_member`` maps back.
    ``(None, None)`` when no member met the criterion.
    """
    members = np.flatnonzero(table["met"])
    if len(members) == 0:
        return None, None
    subset = dataset.isel(member=members)
    options = _options(scale, num_steps)
    results = []
    for name, snapshot in (("trained", -1), ("untrained", 0)):
        key = {"members": members.tolist(), "snapshot": snapshot, **options}
        result = _cached(Path(out) / f"analysis-{name}.nc", key,
                         lambda s=snapshot: analyze(subset, snapshot=s, **options))
        results.append(result.assign_coords(source_member=("member", members)))
    return results[0], results[1]


def _group(dataset: xr.Dataset, members: np.ndarray, snapshot: int):
    specs, snaps = member_specs(dataset, snapshot)
    spec = specs[members[0]]
    if any(specs[m] != spec for m in members):
        raise ValueError(f"members = {list(members)} is not allowed: must share one network structure")
    return spec, group_params(dataset, np.asarray(members), snaps[np.asarray(members)], spec)


def attractor_examples(dataset: xr.Dataset, members, *, snapshot: int = -1, levels=FIGURE1_LEVELS,
                       num_steps: int = 750, num_starts: int = 64, max_iters: int = 100, seed: int = 0) -> list[dict]:
    """Fixed points of single networks at the static inputs ``levels`` (Fig. 1d), one dict per member.

    Each dict: ``x[P, S, N]`` (NaN where not valid), ``valid``, ``stable``, ``value[P]``,
    ``context[P]`` and ``activity[C·T, N]`` (the SVCCA conditions, for the principal components).
    Starts are visited states of that activity plus ``N(0, 0.2²)`` noise.
    """
    examples = []
    for m in members:
        spec, params = _group(dataset, np.asarray([m]), snapshot)
        task, _ = jaxrnn.make(spec.task)
        step = CTRNNStep(spec.activation, spec.alpha, spec.clamp)
        acts = condition_activity(step, params, jnp.asarray(condition_inputs(task.num_contexts, num_steps)))
        key = jax.random.fold_in(jax.random.key(seed), int(m))
        pick = jax.random.randint(key, (num_starts,), 0, acts.shape[1])
        x0 = acts[:, pick] + 0.2 * jax.random.normal(jax.random.fold_in(key, 1), (1, num_starts, spec.hidden))
        inputs, value, context = level_inputs(spec.task, levels)
        options = tuple(sorted(dict(method="lm", tol=1e-8, max_iters=int(max_iters), eigvals_of="valid").items()))
        fps = probe_fixed_points(step, params, x0, inputs, options)
        valid = np.asarray(fps.valid[0])
        examples.append({"member": int(m), "x": np.where(valid[..., None], np.asarray(fps.x[0]), np.nan),
                         "valid": valid, "stable": np.asarray(fps.stable[0]) & valid, "value": value,
                         "context": context, "activity": np.asarray(acts[0])})
    return examples


def pulse_evidence(dataset: xr.Dataset, members, *, num_steps: int, snapshot: int = -1) -> np.ndarray:
    """``[K, C, P]`` antisymmetric readout ``e(t)`` of the noise-free pulse probe (:func:`probe_design`
    for training trials of ``num_steps``; the integration probe of Fig. 4a/d)."""
    pulse, probe_steps = probe_design(num_steps)
    rows = []
    for m in members:
        spec, params = _group(dataset, np.asarray([m]), snapshot)
        task, _ = jaxrnn.make(spec.task)
        result = integration_probe_population(CTRNNStep(spec.activation, spec.alpha, spec.clamp),
                                              LinearReadout(spec.activation, spec.output), params,
                                              jnp.zeros((1, spec.hidden)),
                                              pulse_inputs(task.num_contexts, probe_steps, pulse), pulse)
        rows.append(np.asarray(result.evidence[0]))
    return np.stack(rows) if rows else np.zeros((0, 0, probe_steps))


def zero_input_attractors(result: xr.Dataset) -> np.ndarray:
    """``[K]`` stable fixed points at the zero-input probe(s), averaged over contexts (CDI: one per context)."""
    zero = np.asarray(result.probe_value.values) == 0
    zero &= np.asarray(result.probe_context.values) >= 0
    stable = np.asarray((result.fp_valid & result.fp_stable).sum("fp").values, float)
    return np.array([stable[k, zero[k]].mean() if zero[k].any() else np.nan for k in range(len(stable))])
