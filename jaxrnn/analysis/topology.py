"""Attractor topology of one network's input-dependent fixed points, and distances between networks.

Input: the fixed points of one network at ``P`` static probe inputs (a :class:`FixedPoints`
with a leading probe axis, ``x[P, K, N]``, ``valid[P, K]``, ``eigvals[P, K, N]``, from
``jax.vmap(find_fixed_points, in_axes=(None, None, 0))`` over ``probe_inputs``) and one signed
scalar tag per probe, ``tags[P]`` (the probe's input value). Everything has fixed shapes and
works from the validity masks, so it jits and vmaps over networks.

**McMahan's input-topology signature** (McMahan, Kleinman & Kao 2021,
``fixed_point_input_topology.py``). With the valid fixed points flattened in probe
order (probes ordered by ``|input|`` ascending, as :func:`probe_inputs` generates them; within
a probe in start order), ``z_1, z_2, …`` with tags ``τ(z_i)``::

    nbr_i = the 3 nearest valid fixed points of z_i in state space, itself included
            (Euclidean, ascending distance; sklearn ``NearestNeighbors(3)``, fitted on ALL of them)
    S[i, j] = τ(nbr_i[j])                 i = 1..10 (the first 10 fixed points), j = 1..3
    signature = vec(S) ∈ R^30;            d(a, b) = ‖signature_a − signature_b‖₂

A network with fewer than 10 (or 3) valid fixed points has no complete signature (the authors'
code fails there): missing entries are ``fill`` (0.0, the tag of the zero input) and
``mask`` says which entries are genuine. The authors tag a fixed point by input channel 0; the
pipeline passes the signed probe value (channel 0 for RDM; for N-CDI the cued channel's
value, which channel 0 reads as 0 for every context but the first).

**Alternative: the index profile along the input manifold** (:func:`index_profile`). McMahan's
signature depends on arbitrary choices — which 10 fixed points come first, duplicates of one
attractor found at neighbouring inputs, the tag channel — and is not invariant to the order in
which probes are listed. A standard invariant of a flow near its hyperbolic fixed points is
the number of fixed points of each Morse index (number of unstable directions); how these
counts change with the input is the bifurcation diagram that Maheswaranathan et al. (2019)
compare ("topology of input-dependent fixed points")::

    C[p, m] = #{ valid fixed points at probe p with m unstable eigenvalues },  m = 0, 1, ≥2
              (unstable: |λ| > 1 + margin, discrete time)
    profile = C ∈ R^{P × 3};               d(a, b) = ‖C_a − C_b‖₂

e.g. a bistable decision network at zero evidence has ``[2, 1, 0]`` (two attractors and the
saddle between them) and ``[1, 0, 0]`` at strong evidence; a line attractor has many
(near-)marginal attractors at every input. The profile is invariant to any smooth change of
coordinates, to neuron permutations and to how many starts land on one fixed point, and it
compares networks probe by probe.

:func:`topology_distances` gives the ``[K, K]`` Euclidean distance matrix of either signature.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxrnn._checks import check_range, fail
from jaxrnn.analysis.fixed_points import FixedPoints

NUM_ROWS = 10
NUM_NEIGHBORS = 3
NUM_INDEX_CLASSES = 3


def _flatten_probes(fps: FixedPoints, tags: jax.Array):
    """``x[P·K, N]``, ``valid[P·K]``, ``tag[P·K]`` in probe-major order."""
    if fps.x.ndim != 3:
        fail("fps.x.shape", fps.x.shape, "[P, K, N] (probes, starts, neurons) for one network",
             "for a population use topology_signature_population or jax.vmap")
    P, K, N = fps.x.shape
    tags = jnp.asarray(tags)
    if tags.shape != (P,):
        fail("tags.shape", tags.shape, f"[P] with P = {P} (one signed input value per probe)")
    x = fps.x.reshape(P * K, N)
    valid = fps.valid.reshape(P * K)
    tag = jnp.broadcast_to(tags[:, None], (P, K)).reshape(P * K).astype(x.dtype)
    return x, valid, tag


def topology_signature(
    fps: FixedPoints,
    tags: jax.Array,
    *,
    num_rows: int = NUM_ROWS,
    num_neighbors: int = NUM_NEIGHBORS,
    fill: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """McMahan's input-topology signature of one network (see the module docstring).

    Args:
      fps: fixed points at ``P`` probes, ``x[P, K, N]``, ``valid[P, K]`` (probe-major order
        is the authors' "as generated" order; list probes by ``|input|`` ascending).
      tags: ``[P]`` signed input value of each probe.
      num_rows: fixed points kept (the authors: 10).
      num_neighbors: neighbours per fixed point, itself included (the authors: 3).
      fill: value of entries whose fixed point or neighbour does not exist.

    Returns:
      ``(signature[num_rows·num_neighbors], mask[num_rows·num_neighbors])``, row-major
      (``signature.reshape(num_rows, num_neighbors)[i, j]`` is the tag of the ``j``-th
      nearest neighbour of the ``i``-th fixed point); ``mask`` is True on genuine entries.
    """
    check_range("num_rows", num_rows, 1, integer=True)
    check_range("num_neighbors", num_neighbors, 1, integer=True)
    x, valid, tag = _flatten_probes(fps, tags)
    return _signature(x, valid, tag, int(num_rows), int(num_neighbors), float(fill))


@functools.partial(jax.jit, static_argnames=("num_rows", "num_neighbors", "fill"))
def _signature(x, valid, tag, num_rows, num_neighbors, fill):
    C = x.shape[0]
    k = min(int(num_neighbors), C)
    rows = jnp.nonzero(valid, size=int(num_rows), fill_value=0)[0]
    row_valid = jnp.arange(int(num_rows)) < jnp.sum(valid)
    x_safe = jnp.where(valid[:, None], x, 0.0)
    # Exact differences (not a Gram matrix): ties and near-ties keep their order.
    distance = jnp.linalg.norm(x_safe[rows][:, None, :] - x_safe[None, :, :], axis=-1)
    distance = jnp.where(valid[None, :], distance, jnp.inf)
    # Itself first at distance 0; then ascending distance, lower index first on ties.
    distance = jnp.where(rows[:, None] == jnp.arange(C)[None, :], -1.0, distance)
    neg, neighbours = jax.lax.top_k(-distance, k)
    found = jnp.isfinite(neg)
    if k < num_neighbors:
        pad = ((0, 0), (0, int(num_neighbors) - k))
        neighbours = jnp.pad(neighbours, pad)
        found = jnp.pad(found, pad)
    mask = row_valid[:, None] & found
    signature = jnp.where(mask, tag[neighbours], jnp.asarray(fill, x.dtype))
    return signature.reshape(-1), mask.reshape(-1)


def index_profile(fps: FixedPoints, *, margin: float = 1e-3) -> jax.Array:
    """``[P, 3]`` counts of valid fixed points per probe with 0, 1 and ≥ 2 unstable directions.

    Args:
      fps: fixed points at ``P`` probes (``valid[P, K]``, ``eigvals[P, K, N]``).
      margin: an eigenvalue is unstable iff ``|λ| > 1 + margin`` (near-marginal modes of a
        line attractor count as stable).
    """
    if fps.valid.ndim != 2:
        fail("fps.valid.shape", fps.valid.shape, "[P, K] for one network", "for a population use jax.vmap")
    check_range("margin", margin, 0.0)
    return _index_profile(fps.eigvals, fps.valid, float(margin))


@functools.partial(jax.jit, static_argnames=("margin",))
def _index_profile(eigvals, valid, margin):
    unstable = jnp.sum(jnp.abs(eigvals) > 1.0 + margin, axis=-1)
    index = jnp.minimum(unstable, NUM_INDEX_CLASSES - 1)
    onehot = jax.nn.one_hot(index, NUM_INDEX_CLASSES, dtype=jnp.float32)
    return jnp.sum(onehot * valid[..., None], axis=-2)


def topology_signature_population(fps: FixedPoints, tags: jax.Array, **options) -> tuple[jax.Array, jax.Array]:
    """:func:`topology_signature` vmapped over networks: ``x[K, P, S, N]``, ``tags[P]`` or ``[K, P]``."""
    tags = jnp.asarray(tags)
    in_axes = (0, 0 if tags.ndim == 2 else None)
    return jax.vmap(lambda f, t: topology_signature(f, t, **options), in_axes=in_axes)(fps, tags)


def index_profile_population(fps: FixedPoints, *, margin: float = 1e-3) -> jax.Array:
    """:func:`index_profile` vmapped over networks -> ``[K, P, 3]``."""
    return jax.vmap(lambda f: index_profile(f, margin=margin))(fps)


def topology_distances(signatures: jax.Array) -> jax.Array:
    """``[K, K]`` Euclidean distances between flattened signatures ``signatures[K, ...]``.

    Computed from exact differences (zero diagonal, symmetric); a NaN signature gives NaN
    distances on its row and column.
    """
    signatures = jnp.asarray(signatures)
    if signatures.ndim < 2:
        fail("signatures.shape", signatures.shape, "[K, ...] (one signature per network)")
    flat = signatures.reshape(signatures.shape[0], -1).astype(jnp.result_type(signatures.dtype, jnp.float32))
    return jax.vmap(lambda a: jnp.sqrt(jnp.sum((flat - a) ** 2, axis=-1)))(flat)
