"""The networks of a stored population, rebuilt for analysis (McMahan et al. 2021).

    net = load_network("runs/default", member=3)        # a StoredNetwork (last snapshot)
    states, outputs = net.run(inputs)                    # inputs [T, M] or [B, T, M]

For the population analyses (one compiled program per group of members of equal structure):

    specs, snaps = member_specs(dataset, snapshot=-1)   # NetworkSpec per member, snapshot used
    params = group_params(dataset, members, snaps[members], spec)   # {W_in, W_rec, b, W_out}[G, ...]
    step, readout = CTRNNStep(spec.activation, spec.alpha, spec.clamp), LinearReadout(spec.activation, spec.output)

A member's CTRNN map comes from its stored params (``params.cell.W_in``, ``W_rec``, ``b``,
``params.readout.W_out`` at one snapshot; NaN padding trimmed)::

    x ← (1 − α) x + α (W_rec f(x) + W_in u + b)      [then x_1 = x_10 = 1, x_11 = −1 if clamped]
    y = W_out x  (model.output = "state": BPTT, GA)   or   W_out f(x)  ("rate": Hebbian, full-FORCE)

Model fields come from per-member coords (``model.activation``, ``model.alpha``,
``model.output``, ``rule.clamp_bias``), else the run's TOML in ``attrs["config"]``, else the
rule's defaults (``RULE_MODEL``; α = 0.1; Hebbian clamps iff N ≥ 12). ``snapshot=-1`` takes each
member's last finite snapshot; another index counts in each member's own snapshots. Used by
:mod:`jaxrnn.analysis.pipeline`, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.fixed_point_solvers import RateMap
from jaxrnn.models.cells import ACTIVATIONS
from jaxrnn.rules.hebbian import BIAS_UNITS, BIAS_VALUES, clamp_bias_units

RULE_MODEL = {"bptt": ("shifted_tanh", "state"), "ga": ("shifted_tanh", "state"),
              "hebbian": ("tanh", "rate"), "full_force": ("tanh", "rate")}

@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """Static structure of one member's network (members with equal specs share a program)."""

    task: str
    activation: str
    alpha: float
    output: str
    clamp: bool
    hidden: int
    inputs: int


@dataclasses.dataclass(frozen=True)
class CTRNNStep:
    """``step(params, x, u)``: ``x ← (1 − α) x + α (W_rec f(x) + W_in u + b)`` (+ Hebbian clamp).

    A frozen dataclass, so equal structures hash equal and jit reuses its compilation.
    :meth:`rate_map` is the fixed-point finder's structure hook (closed-form LM normal equations).
    """

    activation: str = "shifted_tanh"
    alpha: float = 0.1
    clamp: bool = False

    def __call__(self, params: dict, x: jax.Array, u: jax.Array) -> jax.Array:
        drive = params["W_rec"] @ ACTIVATIONS[self.activation](x) + params["W_in"] @ u + params["b"]
        x = (1.0 - self.alpha) * x + self.alpha * drive
        return clamp_bias_units(x) if self.clamp else x

    def rate_map(self, params: dict, u: jax.Array) -> RateMap:
        """This map as ``(1 − α) x + α (W f(x) + c)``, ``c = W_in u + b``; a clamped unit has ``α_i = 1``,
        ``W_i· = 0``, ``c_i`` = its clamp value."""
        W, c = params["W_rec"], params["W_in"] @ u + params["b"]
        alpha = jnp.full(c.shape, self.alpha, c.dtype)
        if self.clamp:
            units = jnp.array(BIAS_UNITS)
            W, alpha = W.at[units].set(0.0), alpha.at[units].set(1.0)
            c = c.at[units].set(jnp.array(BIAS_VALUES, c.dtype))
        return RateMap(W, c, alpha, ACTIVATIONS[self.activation])


@dataclasses.dataclass(frozen=True)
class LinearReadout:
    """``readout(params, x)``: ``W_out x`` (``output="state"``) or ``W_out f(x)`` (``"rate"``)."""

    activation: str = "shifted_tanh"
    output: str = "state"

    def __call__(self, params: dict, x: jax.Array) -> jax.Array:
        return params["W_out"] @ (x if self.output == "state" else ACTIVATIONS[self.activation](x))


def _config_tables(dataset: xr.Dataset) -> tuple[dict, dict]:
    try:
        raw = tomllib.loads(dataset.attrs.get("config", "") or "")
    except tomllib.TOMLDecodeError:
        return {}, {}
    model, rule = raw.get("model", {}), raw.get("rule", {})
    return ({k: v for k, v in model.items() if not isinstance(v, list)},
            {k: v for k, v in rule.items() if not isinstance(v, list)})


def _extent(array: np.ndarray, axis: int) -> int:
    """Length of the non-NaN prefix of ``array`` along ``axis`` (trims store padding)."""
    finite = np.isfinite(array)
    other = tuple(i for i in range(array.ndim) if i != axis)
    along = np.any(finite, axis=other) if other else finite
    return int(np.max(np.nonzero(along)[0]) + 1) if along.any() else array.shape[axis]


def _snapshot_counts(dataset: xr.Dataset, num_snapshots: int) -> np.ndarray:
    """Snapshots each member really has: all, unless ``snapshot_update[member, snapshot]`` (a union
    whose sub-grids snapshot at different updates) marks padding with −1 (NaN after :func:`concat_runs`)."""
    members = dataset.sizes["member"]
    coord = dataset.coords.get("snapshot_update")
    if coord is None or coord.dims != ("member", "snapshot"):
        return np.full(members, num_snapshots)
    return np.sum(np.asarray(coord.values, dtype=float) >= 0, axis=1)


def member_specs(dataset: xr.Dataset, snapshot: int = -1) -> tuple[list[NetworkSpec], np.ndarray]:
    """Each member's :class:`NetworkSpec` and the snapshot index used (see module docstring)."""
    for name in ("params.cell.W_rec", "params.cell.W_in", "params.readout.W_out"):
        if name not in dataset:
            fail("dataset", f"<no {name!r}>", "a results store with params snapshots (run.snapshots >= 1)")
    model_cfg, rule_cfg = _config_tables(dataset)
    w_rec = dataset["params.cell.W_rec"].values
    w_in = dataset["params.cell.W_in"].values
    num_snapshots = w_rec.shape[1]
    counts = _snapshot_counts(dataset, num_snapshots)
    if snapshot != -1:
        check_range("snapshot", snapshot, -num_snapshots, num_snapshots - 1, integer=True)
    specs, snaps = [], []
    for m in range(dataset.sizes["member"]):
        def field(table, key, default, _m=m):
            coord = f"{table}.{key}"
            if coord in dataset.coords:
                return dataset[coord].values[_m].item()
            return (model_cfg if table == "model" else rule_cfg).get(key, default)

        finite = [s for s in range(num_snapshots) if np.all(np.isfinite(w_rec[m, s]))]
        if snapshot == -1:
            snap = finite[-1] if finite else counts[m] - 1
        else:
            if not -counts[m] <= snapshot < counts[m]:
                fail("snapshot", snapshot, f"in [{-counts[m]}, {counts[m] - 1}] for member {m}",
                     f"it has {counts[m]} of the store's {num_snapshots} snapshots, as sub-grids of a union "
                     "may snapshot at different updates; -1 takes each member's last")
            snap = int(snapshot) % counts[m]
        rule = str(dataset["rule.name"].values[m])
        activation, output = RULE_MODEL.get(rule, ("shifted_tanh", "state"))
        if rule not in ("hebbian", "full_force"):  # those two require tanh rates
            activation = field("model", "activation", activation)
            output = field("model", "output", output)
        hidden = _extent(w_rec[m, snap], 0)
        clamp = bool(field("rule", "clamp_bias", hidden >= 12)) if rule == "hebbian" else False
        specs.append(NetworkSpec(task=str(dataset["task.name"].values[m]), activation=str(activation),
                                 alpha=float(field("model", "alpha", 0.1)), output=str(output), clamp=clamp,
                                 hidden=hidden, inputs=_extent(w_in[m, snap], 1)))
        snaps.append(snap)
    return specs, np.asarray(snaps)


def group_params(dataset: xr.Dataset, members: np.ndarray, snaps: np.ndarray, spec: NetworkSpec) -> dict:
    """``{W_in, W_rec, b, W_out}`` of ``members`` at their ``snaps``, trimmed to ``spec``'s sizes (``[G, ...]``)."""
    N, M = spec.hidden, spec.inputs

    def take(name, shape):
        if name not in dataset:
            return np.zeros((len(members),) + shape, np.float32)
        values = dataset[name].values[members, snaps]
        values = values[(slice(None),) + tuple(slice(0, n) for n in shape)]
        return np.nan_to_num(values, nan=0.0) if name.endswith(".b") else values

    out = _extent(dataset["params.readout.W_out"].values[members[0], snaps[0]], 0)
    return {"W_in": jnp.asarray(take("params.cell.W_in", (N, M))), "W_rec": jnp.asarray(take("params.cell.W_rec", (N, N))),
            "b": jnp.asarray(take("params.cell.b", (N,))), "W_out": jnp.asarray(take("params.readout.W_out", (out, N)))}


@dataclasses.dataclass(frozen=True)
class StoredNetwork:
    """One stored member's network, rebuilt: run it on new inputs with :meth:`run`.

    Attributes:
      member: the member's index in the store.
      snapshot: the snapshot index used (counted in the member's own snapshots).
      update: the update at which that snapshot was taken (``None`` if the store does not say).
      spec: its :class:`NetworkSpec` (task, activation, α, output, clamp, sizes).
      params: ``{"W_in": [N, M], "W_rec": [N, N], "b": [N], "W_out": [O, N]}`` (NaN padding trimmed).
    """

    member: int
    snapshot: int
    update: int | None
    spec: NetworkSpec
    params: dict

    @property
    def step(self) -> CTRNNStep:
        """``step(params, x, u) -> x_next``: the map the analyses (fixed points, Jacobians) take."""
        return CTRNNStep(self.spec.activation, self.spec.alpha, self.spec.clamp)

    @property
    def readout(self) -> LinearReadout:
        return LinearReadout(self.spec.activation, self.spec.output)

    def run(self, inputs, x0=None) -> tuple[jax.Array, jax.Array]:
        """States and outputs for ``inputs`` ``[T, M]`` (one trial) or ``[B, T, M]`` (a batch).

        ``x0`` (``[N]`` or ``[B, N]``) defaults to zeros — not the random initial state the rules
        train from (e.g. BPTT's ``init_state_scale · N(0, 1)``), so pass that for a like-for-like
        comparison with the stored validation accuracy. Clamped (Hebbian bias) units are set
        before the first step. Returns ``(states, outputs)``: ``[.., T, N]`` (the state after each
        step) and ``[.., T, O]``.
        """
        inputs = jnp.asarray(inputs, jnp.float32)
        if inputs.ndim not in (2, 3) or inputs.shape[-1] != self.spec.inputs:
            fail("inputs", f"<array of shape {inputs.shape}>",
                 f"[T, {self.spec.inputs}] or [B, T, {self.spec.inputs}] (this network has {self.spec.inputs} inputs)")
        batch = inputs.shape[:-2]
        if x0 is None:
            x0 = jnp.zeros(batch + (self.spec.hidden,), jnp.float32)
        x0 = jnp.asarray(x0, jnp.float32)
        if x0.shape != batch + (self.spec.hidden,):
            fail("x0", f"<array of shape {x0.shape}>", f"of shape {batch + (self.spec.hidden,)}")
        if self.spec.clamp:
            x0 = clamp_bias_units(x0)
        fn = _run_trials if batch else _run_trial
        return fn(self.step, self.readout, self.params, x0, inputs)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_trial(step, readout, params, x0, inputs):
    def body(x, u):
        x = step(params, x, u)
        return x, (x, readout(params, x))

    _, (states, outputs) = jax.lax.scan(body, x0, inputs)
    return states, outputs


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run_trials(step, readout, params, x0, inputs):
    return jax.vmap(lambda x, u: _run_trial(step, readout, params, x, u))(x0, inputs)


def load_network(store, member: int, *, snapshot: int = -1) -> StoredNetwork:
    """Rebuild member ``member``'s network from a results store, ready to run on new inputs.

    Args:
      store: a run directory (``jaxrnn run --out DIR``), its ``results.zarr``, or an opened
        ``xarray.Dataset``.
      member: the member's index (``dataset.member``).
      snapshot: which params snapshot: ``-1`` (default) is the member's last finite one; another
        index counts in the member's own snapshots (as :func:`member_specs`).

    Returns:
      A :class:`StoredNetwork`. CTRNN members only (the McMahan et al. rules, and any run whose
      store holds ``params.cell.W_rec``, ``W_in`` and ``params.readout.W_out``); anything else is a
      ``ValueError`` naming what is missing.

    Example (a run of the packaged ``default`` config)::

        net = load_network("runs/default", member=0)
        task, params = jaxrnn.make("rdm", noise_std=0.0)
        trials = task.validation_trials(jax.random.PRNGKey(0), params, 200)
        states, outputs = net.run(trials.inputs)          # [200, T, N], [200, T, 1]
        accuracy = task.accuracy(outputs, trials).mean()
    """
    if isinstance(store, xr.Dataset):
        dataset = store
    else:
        from pathlib import Path

        from jaxrnn.population.store import STORE_NAME

        path = Path(store)
        path = path / STORE_NAME if (path / STORE_NAME).exists() else path
        if not path.exists():
            fail("store", str(store), "a run directory written by `jaxrnn run`, its results.zarr, or an xarray.Dataset")
        dataset = xr.open_zarr(path, consolidated=True)  # lazily: only this member is read
    check_range("member", member, 0, dataset.sizes["member"] - 1, integer=True)
    one = dataset.isel(member=[int(member)]).load()
    specs, snaps = member_specs(one, snapshot=snapshot)
    spec, snap = specs[0], int(snaps[0])
    params = {k: v[0] for k, v in group_params(one, np.asarray([0]), np.asarray([snap]), spec).items()}
    coord = one.coords.get("snapshot_update")
    update = None
    if coord is not None:
        values = np.asarray(coord.values)
        update = int(values[0, snap] if values.ndim == 2 else values[snap])
    return StoredNetwork(member=int(member), snapshot=snap, update=update, spec=spec, params=params)
