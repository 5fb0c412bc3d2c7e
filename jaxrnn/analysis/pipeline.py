"""McMahan et al. (2021) analysis of a stored population, vmapped over members.

    res = analyze(dataset_or_run_dir, snapshot=-1, num_starts=100, probe="small")
    analyze_store(run_dir)        # the same, merged into the run's Zarr store (atomic rewrite)

For each member the CTRNN map is rebuilt (:mod:`jaxrnn.analysis.stored_networks`) from its stored params (``params.cell.W_in``,
``W_rec``, ``b``, ``params.readout.W_out`` at one snapshot; NaN padding trimmed)::

    x ← (1 − α) x + α (W_rec f(x) + W_in u + b)      [then x_1 = x_10 = 1, x_11 = −1 if clamped]
    y = W_out x  (model.output = "state": BPTT, GA)   or   W_out f(x)  ("rate": Hebbian, full-FORCE)

``f`` = 1 + tanh (BPTT/GA, ``shifted_tanh``) or tanh (Hebbian, full-FORCE, which require it).
Model fields come from per-member coords (``model.activation``, ``model.alpha``,
``model.output``, ``rule.clamp_bias``; :func:`concat_runs` writes them), else the run's TOML in
``attrs["config"]``, else the rule's defaults (α = 0.1; Hebbian clamps iff N ≥ 12).
Members sharing (task, f, α, output, clamp, N, M) form one group: one compiled, vmapped
program. ``snapshot=-1`` takes each member's last finite snapshot; another index counts in each
member's own snapshots (a union's sub-grids may have different ones, ``snapshot_update[member,
snapshot]``), so ``-2`` is every member's last but one.

Per member (variables of the returned ``xarray.Dataset``; ``member`` as the input's):

- **Fixed points** (McMahan et al.'s code, ``FP_Analysis.py``) at McMahan's "small" probes (:func:`probe_inputs`, ``Q``
  probes ordered by ``|input|``), ``num_starts`` starts each: visited states of the SVCCA
  trajectories plus ``N(0, start_noise²)`` (``starts="visited"``) or McMahan's ``U(−5, 5)^N``
  (``"uniform"``); LM, ``q < 1e-8`` (a batch's members × probes × starts in one work queue,
  closed-form normal equations via :meth:`~jaxrnn.analysis.stored_networks.CTRNNStep.rate_map`, eigenvalues of the distinct
  points only). Stored compacted to ``max_fps`` per probe:
  ``fp_x[member, probe, fp, neuron]``, ``fp_valid``, ``fp_stable``, ``fp_num_unstable``,
  ``fp_max_abs_eig``, ``fp_q``; ``fp_count[member, probe]`` (all distinct FPs),
  ``probe_value[member, probe]`` (signed input: RDM channel 0, N-CDI the cued channel),
  ``probe_context[member, probe]`` (−1: padding; probes differ by task).
- **SVCCA** (McMahan et al.'s code, ``svcca_analysis.py``) on noise-free condition-averaged activity: constant inputs
  ``linspace(−0.1857, 0.1857, 10)`` on each context's channel with its cue, ``num_steps``
  steps from ``x_0 = 0``, hidden ``x`` at every step → ``[10·n·T, N]``; 95 % variance per
  network; ``svcca_distance[member, member_b]`` (NaN across tasks: different conditions), by
  :func:`~jaxrnn.analysis.population_svcca.svcca_distances` (= ``pairwise("svcca")``, faster).
  Hebbian bias units are constant, so centring removes them (the authors dropped them).
- **Topology** (McMahan et al.'s ``fixed_point_input_topology.py``, :mod:`jaxrnn.analysis.topology`): ``topology_signature[member,
  topology_feature]`` (30-D) + ``topology_signature_valid``, ``topology_distance``;
  ``index_profile[member, probe, fp_index]`` and ``index_profile_distance``.
- **Embeddings** per task (classical MDS of each distance matrix, on the distances, not on
  rows as the authors' sklearn call, McMahan et al.'s code, ``svcca_analysis.py``): ``svcca_mds``, ``topology_mds``,
  ``index_profile_mds`` ``[member, mds_axis]``; silhouettes by ``rule.name``:
  ``*_silhouette[analysis_task]`` (NaN with one rule or a task of < 3 members).
- **Integration probe** (:mod:`jaxrnn.analysis.probes`): ``integration_response``,
  ``integration_retention``, ``integration_decay_time``, ``integration_class`` (1 stable,
  0 transient, −1 unresponsive): a pulse of ``pulse`` steps (default ``num_steps // 5``) in a
  trial of ``probe_steps`` steps (default ``num_steps``); a longer probe than the training
  trial separates a slow leak from a stable memory.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from jaxrnn._checks import check_choice, check_range, fail
from jaxrnn.analysis.embedding import mds, silhouette
from jaxrnn.analysis.fixed_point_inputs import probe_inputs
from jaxrnn.analysis.fixed_points import find_fixed_points_population
from jaxrnn.analysis.probes import integration_probe_population, pulse_inputs
from jaxrnn.analysis.population_svcca import svcca_distances
from jaxrnn.analysis.stored_networks import CTRNNStep, LinearReadout, NetworkSpec, group_params, member_specs
from jaxrnn.analysis.topology import index_profile_population, topology_distances, topology_signature_population
from jaxrnn.population.attributes import describe_analysis

SVCCA_CONDITIONS = 10
SVCCA_COHERENCE = 0.1857
PREFIXES = ("fp_", "probe_", "svcca_", "topology_", "index_profile", "integration_")

__all__ = ["analyze", "analyze_store", "concat_runs", "condition_activity", "condition_inputs", "probe_fixed_points"]


def condition_inputs(num_contexts: int, num_steps: int) -> np.ndarray:
    """``[C, T, M]`` McMahan's SVCCA conditions: 10 constant coherences per context, cue on."""
    levels = np.linspace(-SVCCA_COHERENCE, SVCCA_COHERENCE, SVCCA_CONDITIONS)
    n = max(num_contexts, 1)
    M = 1 if num_contexts == 0 else 2 * n
    inputs = np.zeros((n, SVCCA_CONDITIONS, num_steps, M), np.float32)
    for c in range(n):
        inputs[c, :, :, c] = levels[:, None]
        if num_contexts:
            inputs[c, :, :, n + c] = 1.0
    return inputs.reshape(n * SVCCA_CONDITIONS, num_steps, M)


@functools.partial(jax.jit, static_argnames=("step",))
def condition_activity(step, params, inputs):
    """``[P, C·T, N]`` hidden states of ``P`` members (``params`` leaves ``[P, ...]``) for every
    condition of ``inputs[C, T, M]``, from ``x_0 = 0`` (``step``: a :class:`~jaxrnn.analysis.stored_networks.CTRNNStep`)."""
    def one(p):
        x0 = jnp.zeros(p["W_rec"].shape[0], inputs.dtype)
        run = lambda us: jax.lax.scan(lambda x, u: (step(p, x, u),) * 2, x0, us)[1]  # noqa: E731
        states = jax.vmap(run)(inputs)
        return states.reshape(-1, states.shape[-1])

    return jax.vmap(one)(params)


@functools.partial(jax.jit, static_argnames=("step", "options"))
def probe_fixed_points(step, params, x0, probes, options):
    """``FixedPoints[P, Q, K]`` of ``P`` members at ``Q`` static inputs ``probes[Q, M]`` from the
    starts ``x0[P, K, N]``: one work queue of ``P·Q·K`` searches. ``options``: a sorted tuple of
    :func:`~jaxrnn.analysis.fixed_points.find_fixed_points` keyword items (hashable, static)."""
    P, Q = x0.shape[0], probes.shape[0]
    repeat = lambda a: jnp.repeat(a, Q, axis=0)  # noqa: E731  (member-major, probe-minor)
    fps = find_fixed_points_population(step, jax.tree.map(repeat, params), repeat(x0), jnp.tile(probes, (P, 1)),
                                       **dict(options))
    return jax.tree.map(lambda a: a.reshape((P, Q) + a.shape[1:]), fps)


@functools.partial(jax.jit, static_argnames=("max_fps",))
def _summarise(fps, tags, max_fps: int) -> dict[str, jax.Array]:
    """Compacted fixed points (valid first, stable order, ``max_fps`` per probe), counts, topology."""
    order = jnp.argsort(~fps.valid, axis=-1, stable=True)[..., :max_fps]
    take = lambda a: jnp.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - order.ndim)), axis=2)  # noqa: E731
    valid = take(fps.valid)
    abs_eig = jnp.abs(fps.eigvals)
    signature, mask = topology_signature_population(fps, tags)
    return {"fp_x": jnp.where(valid[..., None], take(fps.x), jnp.nan), "fp_valid": valid, "fp_stable": take(fps.stable),
            "fp_q": jnp.where(valid, take(fps.q), jnp.nan),
            "fp_num_unstable": jnp.where(valid, take(jnp.sum(abs_eig > 1.0, axis=-1)), -1),
            "fp_max_abs_eig": jnp.where(valid, take(jnp.max(abs_eig, axis=-1)), jnp.nan),
            "fp_count": fps.num_valid, "index_profile": index_profile_population(fps),
            "topology_signature": signature, "topology_signature_valid": mask}


def _probe_values(probes: np.ndarray, num_contexts: int) -> tuple[np.ndarray, np.ndarray]:
    if num_contexts == 0:
        return probes[:, 0], np.zeros(len(probes), np.int32)
    return probes[:, :num_contexts].sum(-1), np.argmax(probes[:, num_contexts:], axis=-1).astype(np.int32)


def _embed(D: np.ndarray, labels: np.ndarray, mds_dims: int) -> tuple[np.ndarray, float]:
    K = len(D)
    Y = np.full((K, mds_dims), np.nan)
    # A failed member (NaN activity or signature) has a NaN row; drop it, keep the rest.
    ok = np.sum(~np.isfinite(D), axis=1) < max(1.0, (K - 1) / 2)
    ok &= np.all(np.isfinite(D[:, ok]), axis=1)
    score = np.nan
    if ok.sum() > mds_dims:
        sub = D[np.ix_(ok, ok)]
        Y[ok] = np.asarray(mds(sub, dims=mds_dims))
        if 2 <= len(np.unique(labels[ok])) <= ok.sum() - 1:
            score = float(silhouette(sub, np.unique(labels[ok], return_inverse=True)[1]))
    return Y, score


def analyze(dataset: xr.Dataset | str | Path, *, snapshot: int = -1, num_starts: int = 100, probe: str = "small",
            starts: str = "visited", start_noise: float = 0.2, num_steps: int = 750, time_stride: int = 1,
            pulse: int | None = None, probe_steps: int | None = None, max_fps: int = 16, member_batch: int = 32,
            tol: float = 1e-8, max_iters: int = 100, seed: int = 0, progress: bool = False) -> xr.Dataset:
    """Fixed points, SVCCA, topology, embeddings and integration probes of every member.

    Args:
      dataset: a results ``xarray.Dataset`` or a run directory / ``.zarr`` path.
      snapshot: params snapshot index; −1 = each member's last finite snapshot.
      num_starts: fixed-point starts per probe input (McMahan: 100).
      probe: ``"small"`` (McMahan's static probes, :func:`probe_inputs`).
      starts: ``"visited"`` (trajectory states + noise) or ``"uniform"`` (``U(−5, 5)^N``).
      start_noise: std of the noise added to visited starts.
      num_steps: steps of the SVCCA conditions and of the pulse trials (study: 750).
      time_stride: keep every ``time_stride``-th step of the SVCCA activity.
      pulse: pulse length of the integration probe (default ``num_steps // 5``).
      probe_steps: length of the integration probe's trial (default ``num_steps``); the
        evidence is read ``probe_steps − pulse`` steps after the pulse ends.
      max_fps: fixed points stored per probe (all are used for the topology).
      member_batch: members per fixed-point work queue (``batch·Q·starts`` searches; memory
        ~ lanes·N² + batch·Q·starts·N; larger batches waste less in the queue's final drain).
      tol: ``q`` tolerance of a fixed point.
      max_iters: Levenberg–Marquardt iterations per start (most converge in < 40; each start
        runs until it is done or this budget is spent, then its lane takes the next start).
      seed: seed of the starts (member ``m`` uses ``fold_in(key, m)``).
      progress: show progress bars (tqdm, on stderr) over the network groups and the tasks.

    Returns:
      ``xarray.Dataset`` of the new variables (see the module docstring), ``member`` as input.
    """
    from jaxrnn.population import load

    if not isinstance(dataset, xr.Dataset):
        dataset = load(dataset)
    check_choice("probe", probe, ("small",))
    check_choice("starts", starts, ("visited", "uniform"))
    for name, value, low in (("num_starts", num_starts, 1), ("num_steps", num_steps, 2), ("time_stride", time_stride, 1),
                             ("max_fps", max_fps, 1), ("member_batch", member_batch, 1), ("max_iters", max_iters, 1)):
        check_range(name, value, low, integer=True)
    pulse = num_steps // 5 if pulse is None else pulse
    probe_steps = num_steps if probe_steps is None else probe_steps
    check_range("probe_steps", probe_steps, 2, integer=True)
    check_range("pulse", pulse, 1, probe_steps - 1, integer=True)
    import jaxrnn

    specs, snaps = member_specs(dataset, snapshot)
    K = len(specs)
    rules = np.asarray(dataset["rule.name"].values).astype(str)
    groups: dict[NetworkSpec, list[int]] = {}
    for m, spec in enumerate(specs):
        groups.setdefault(spec, []).append(m)
    tasks = sorted({s.task for s in specs})
    n_max = max(s.hidden for s in specs)
    q_max = max(len(probe_inputs(t)) for t in tasks)
    out = {"fp_x": np.full((K, q_max, max_fps, n_max), np.nan, np.float32), "fp_valid": np.zeros((K, q_max, max_fps), bool),
           "fp_stable": np.zeros((K, q_max, max_fps), bool), "fp_q": np.full((K, q_max, max_fps), np.nan, np.float32),
           "fp_num_unstable": np.full((K, q_max, max_fps), -1, np.int32),
           "fp_max_abs_eig": np.full((K, q_max, max_fps), np.nan, np.float32),
           "fp_count": np.zeros((K, q_max), np.int32), "probe_value": np.full((K, q_max), np.nan, np.float32),
           "probe_context": np.full((K, q_max), -1, np.int32), "index_profile": np.full((K, q_max, 3), np.nan, np.float32),
           "topology_signature": np.zeros((K, 30), np.float32), "topology_signature_valid": np.zeros((K, 30), bool)}
    scalars = {name: np.full(K, np.nan, np.float32) for name in
               ("integration_response", "integration_retention", "integration_decay_time")}
    scalars["integration_class"] = np.full(K, -1, np.int32)
    activity = {}
    key = jax.random.key(seed)
    options = tuple(sorted(dict(method="lm", tol=float(tol), max_iters=int(max_iters), eigvals_of="valid").items()))
    for spec, members in tqdm(groups.items(), desc="fixed points and probes", unit="group", disable=not progress,
                              file=sys.stderr):
        members = np.asarray(members)
        task, _ = jaxrnn.make(spec.task)
        n_ctx = task.num_contexts
        step = CTRNNStep(spec.activation, spec.alpha, spec.clamp)
        readout = LinearReadout(spec.activation, spec.output)
        params = group_params(dataset, members, snaps[members], spec)
        acts = np.asarray(condition_activity(step, params, jnp.asarray(condition_inputs(n_ctx, num_steps))))
        activity.update({int(m): a[::time_stride] for m, a in zip(members, acts)})
        probes = np.asarray(probe_inputs(spec.task))
        values, contexts = _probe_values(probes, n_ctx)
        Q = len(probes)
        keys = jnp.stack([jax.random.fold_in(key, int(m)) for m in members])
        if starts == "visited":
            pick = jax.vmap(lambda k, a: a[jax.random.randint(k, (num_starts,), 0, a.shape[0])])(keys, jnp.asarray(acts))
            noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), (num_starts, spec.hidden)))(keys)
            x0 = pick + start_noise * noise
        else:
            x0 = jax.vmap(lambda k: jax.random.uniform(k, (num_starts, spec.hidden), minval=-5.0, maxval=5.0))(keys)
        for lo in range(0, len(members), member_batch):
            part = slice(lo, lo + member_batch)
            sub = jax.tree_util.tree_map(lambda a: a[part], params)
            fps = probe_fixed_points(step, sub, x0[part], jnp.asarray(probes), options)
            rows = members[part]
            for name, value in _summarise(fps, jnp.asarray(values, fps.x.dtype), max_fps).items():
                value = np.asarray(value)
                if name.startswith("fp_") and name != "fp_count":
                    out[name][(rows, slice(0, Q), slice(0, value.shape[2])) + (slice(0, spec.hidden),) * (value.ndim - 3)] = value
                elif name.startswith("topology"):
                    out[name][rows] = value
                else:
                    out[name][rows, :Q] = value
        out["probe_value"][members, :Q], out["probe_context"][members, :Q] = values, contexts
        result = integration_probe_population(step, readout, params, jnp.zeros((len(members), spec.hidden)),
                                              pulse_inputs(n_ctx, probe_steps, pulse), pulse)
        for name in ("response", "retention", "decay_time", "label"):
            target = "integration_class" if name == "label" else f"integration_{name}"
            scalars[target][members] = np.asarray(getattr(result, name))

    distances = {name: np.full((K, K), np.nan, np.float32) for name in
                 ("svcca_distance", "topology_distance", "index_profile_distance")}
    embeddings = {name: np.full((K, 2), np.nan, np.float32) for name in ("svcca_mds", "topology_mds", "index_profile_mds")}
    silhouettes = {name: np.full(len(tasks), np.nan, np.float32) for name in
                   ("svcca_silhouette", "topology_silhouette", "index_profile_silhouette")}
    for t, task_name in enumerate(tqdm(tasks, desc="distances and embeddings", unit="task", disable=not progress,
                                       file=sys.stderr)):
        idx = np.asarray([m for m, s in enumerate(specs) if s.task == task_name])
        width = max(specs[m].hidden for m in idx)
        Xs = np.stack([np.pad(activity[int(m)], ((0, 0), (0, width - activity[int(m)].shape[1]))) for m in idx])
        # Profiles are stored padded to the largest probe count of the population; a task's own
        # probes come first, so its block is sliced to them (the NaN padding would poison it).
        num_probes = len(probe_inputs(task_name))
        blocks = {"svcca": np.asarray(svcca_distances(jnp.asarray(Xs), variance=0.95)),
                  "topology": np.asarray(topology_distances(jnp.asarray(out["topology_signature"][idx]))),
                  "index_profile": np.asarray(topology_distances(jnp.asarray(out["index_profile"][idx, :num_probes])))}
        for name, D in blocks.items():
            distances[f"{name}_distance"][np.ix_(idx, idx)] = D
            Y, score = _embed(D, rules[idx], 2)
            embeddings[f"{name}_mds"][idx] = Y
            silhouettes[f"{name}_silhouette"][t] = score

    fp_dims = ("member", "probe", "fp")
    data = {name: (fp_dims + (("neuron",) if name == "fp_x" else ()), value) for name, value in out.items()
            if name.startswith("fp_") and name != "fp_count"}
    data.update({"fp_count": (("member", "probe"), out["fp_count"]),
                 "probe_value": (("member", "probe"), out["probe_value"]),
                 "probe_context": (("member", "probe"), out["probe_context"]),
                 "index_profile": (("member", "probe", "fp_index"), out["index_profile"]),
                 "topology_signature": (("member", "topology_feature"), out["topology_signature"]),
                 "topology_signature_valid": (("member", "topology_feature"), out["topology_signature_valid"])})
    data.update({name: (("member", "member_b"), value) for name, value in distances.items()})
    data.update({name: (("member", "mds_axis"), value) for name, value in embeddings.items()})
    data.update({name: (("analysis_task",), value) for name, value in silhouettes.items()})
    data.update({name: (("member",), value) for name, value in scalars.items()})
    data["analysis_snapshot"] = (("member",), snaps.astype(np.int32))
    coords = {"member": dataset["member"].values, "member_b": dataset["member"].values,
              "analysis_task": np.asarray(tasks), "fp_index": np.asarray(["stable", "saddle", "higher"])}
    attrs = {"analysis": json.dumps(dict(snapshot=snapshot, num_starts=num_starts, probe=probe, starts=starts,
                                         start_noise=start_noise, num_steps=num_steps, time_stride=time_stride,
                                         pulse=pulse, probe_steps=probe_steps, max_fps=max_fps, tol=tol,
                                         max_iters=max_iters, seed=seed))}
    return describe_analysis(xr.Dataset(data, coords=coords, attrs=attrs))


def analyze_store(path: str | Path, **options: Any) -> xr.Dataset:
    """:func:`analyze` a run's store and write the result into it (atomic rewrite; old analysis replaced)."""
    from jaxrnn.population import store

    path = Path(path)
    run_dir = path.parent if path.name == store.STORE_NAME else path
    dataset = store.load(run_dir)
    result = analyze(dataset, **options)
    stale = [name for name in dataset.data_vars if name.startswith(PREFIXES) or name == "analysis_snapshot"]
    merged = dataset.drop_vars(stale).drop_dims([d for d in ("member_b",) if d in dataset.dims], errors="ignore")
    merged = xr.merge([merged, result], compat="override", combine_attrs="override")
    merged.attrs = {**dataset.attrs, "analysis": result.attrs["analysis"]}
    store.save(merged, run_dir)
    return merged


def concat_runs(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate per-rule runs along ``member`` (renumbered), recording each member's model fields.

    Adds coords ``model.activation``, ``model.alpha``, ``model.output``, ``rule.clamp_bias`` from
    each run's config so :func:`analyze` rebuilds every network correctly; unindexed dims
    (``evaluation``, ``snapshot``, params axes) are NaN-padded to the longest run.
    """
    if not datasets:
        fail("datasets", datasets, "a non-empty list of results datasets")
    parts = []
    for ds in datasets:
        specs, _ = member_specs(ds)
        ds = ds.assign_coords({"model.activation": ("member", [s.activation for s in specs]),
                               "model.alpha": ("member", [s.alpha for s in specs]),
                               "model.output": ("member", [s.output for s in specs]),
                               "rule.clamp_bias": ("member", [s.clamp for s in specs])})
        # update-number indexes would align the runs by update; pad by position instead
        parts.append(ds.drop_vars([c for c in ("evaluation", "snapshot") if c in ds.indexes]))
    sizes = {}
    for ds in parts:
        for dim, size in ds.sizes.items():
            if dim != "member" and dim not in ds.indexes:
                sizes[dim] = max(sizes.get(dim, 0), size)
    padded = [ds.pad({d: (0, n - ds.sizes[d]) for d, n in sizes.items() if d in ds.sizes and ds.sizes[d] < n})
              for ds in parts]
    merged = xr.concat(padded, dim="member", join="outer", combine_attrs="drop_conflicts", coords="different",
                       compat="equals")
    merged = merged.assign_coords(member=np.arange(merged.sizes["member"]))
    merged.attrs["config"] = "\n".join(ds.attrs.get("config", "") for ds in datasets)
    return merged
