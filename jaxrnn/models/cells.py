"""Recurrent cells as ``flax.linen`` modules with the ``nn.RNNCellBase`` contract.

``carry, y = cell.apply(params, carry, x)`` advances one step of one trial (unbatched
``carry[N]``, ``x[M]``); batch and population axes come from ``jax.vmap``. Weights use the
mathematical (column) convention: ``W_rec[N, N]`` maps presynaptic (column) to
postsynaptic (row) units, ``W_in[N, M]``, so the Jacobians read as in the papers.

Static configuration (sizes, activation, α, initialisation scheme) is a module attribute;
the sweepable recurrent gain ``g`` is applied by :func:`init_params`, which draws the
recurrent matrix at unit gain and rescales it by ``g ** cell.gain_exponent`` — so ``g`` can be
a traced value and sweeping it never recompiles. ``cell.init`` alone gives ``g = 1``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxrnn._checks import check_choice, check_range, fail

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "shifted_tanh": lambda x: 1.0 + jnp.tanh(x),
    "relu": jax.nn.relu,
    "linear": lambda x: x,
}


#: ``f'(x)`` written in terms of the rate ``r = f(x)``, per activation, so that a hand-written
#: backward pass can read the derivative off the stored rates alone (tanh: ``1 − r²``;
#: shifted_tanh: ``r (2 − r)``, i.e. ``1 − tanh²(x)`` with ``tanh(x) = r − 1``; relu: ``[r > 0]``;
#: linear: 1). Used by :func:`~jaxrnn.models.rollout.ctrnn_readout_trials`, the fused kernel
#: (:mod:`~jaxrnn.models.ctrnn_fused`) and :mod:`~jaxrnn.rules.integrator_loop`.
DERIVATIVE_FROM_RATE = {
    "tanh": lambda r: 1.0 - r * r,
    "shifted_tanh": lambda r: r * (2.0 - r),
    "relu": lambda r: (r > 0).astype(r.dtype),
    "linear": lambda r: jnp.ones_like(r),
}


def activation_fn(name: str):
    """The rate function ``f`` named ``name`` (tanh, shifted_tanh = 1 + tanh, relu, linear)."""
    check_choice("model.activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def _normal(std: float):
    def init(key, shape, dtype=jnp.float32):
        return std * jax.random.normal(key, shape, dtype)

    return init


class CTRNN(nn.RNNCellBase):
    """Continuous-time RNN, Euler-discretised with ``α = dt/τ``.

    ``x ← (1 − α) x + α (W_rec f(x) + W_in u + b)``, output ``y = x`` (``output="state"``,
    McMahan et al.'s BPTT/GA networks read out the state) or ``y = f(x)`` (``output="rate"``).

    Initialisation (``weight_init``):
      - ``"mcmahan"`` (authors' code, default): ``W_rec ~ (g²/N)·N(0, 1)`` (std ``g²/N``),
        ``W_in ~ input_scale·N(0, 1)``, ``b = 0``; ``gain_exponent = 2``.
      - ``"normal"`` (the paper's text): ``W_rec ~ N(0, g²/N)`` (std ``g/√N``); ``gain_exponent = 1``.
      - ``"uniform"``: ``W_in ~ U(−input_scale, input_scale)``, ``W_rec`` as ``"normal"``
        (Ger & Barak's tracking controller with ``input_scale = 1/k``, ``k = √N``, or ``N``
        for their ``small_scale``; Ger & Barak's code, ``ct_rnn_controller``).
      - ``"ger_barak"``: Ger & Barak's double-integrator controller (``ct_rnn_controller``,
        ``manually_initialize``; Ger & Barak's code, ``ct_rnn_controller``): ``W_in ~ N(0, 1/N²)`` (std ``1/N``, ignores
        ``input_scale``), ``W_rec = g·N(0, 1/N)`` (std ``g/√N``), ``b = 0``;
        ``gain_exponent = 1``. Their ``W_out ~ N(0, 1/N²)`` is the readout's (see
        ``jaxrnn.rules.closed_loop``).

    Attributes (all static):
      hidden: number of units N.
      alpha: ``dt/τ`` in ``(0, 1]``; 1 gives the discrete RNN ``x ← W_rec f(x) + W_in u + b``.
      activation: ``tanh``, ``shifted_tanh`` (``1 + tanh``), ``relu`` or ``linear``.
      weight_init: ``"mcmahan"``, ``"normal"``, ``"uniform"`` or ``"ger_barak"``.
      input_scale: scale of ``W_in`` (0.5 in McMahan et al.).
      output: ``"state"`` or ``"rate"``.
      use_bias: include the bias ``b`` (initialised at 0).
    """

    hidden: int
    alpha: float = 0.1
    activation: str = "shifted_tanh"
    weight_init: str = "mcmahan"
    input_scale: float = 0.5
    output: str = "state"
    use_bias: bool = True

    def __post_init__(self):
        check_range("model.hidden", self.hidden, 1, integer=True)
        check_range("model.alpha", self.alpha, 0.0, 1.0, low_open=True)
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_choice("model.weight_init", self.weight_init, ("mcmahan", "normal", "uniform", "ger_barak"))
        check_choice("model.output", self.output, ("state", "rate"))
        check_range("model.input_scale", self.input_scale, 0.0)
        super().__post_init__()

    @property
    def gain_exponent(self) -> int:
        return 2 if self.weight_init == "mcmahan" else 1

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        n = self.hidden
        rec_std = 1.0 / n if self.weight_init == "mcmahan" else 1.0 / jnp.sqrt(n)
        if self.weight_init == "uniform":
            s = self.input_scale
            in_init = lambda k, shape, dtype=jnp.float32: jax.random.uniform(k, shape, dtype, -s, s)  # noqa: E731
        elif self.weight_init == "ger_barak":
            in_init = _normal(1.0 / n)
        else:
            in_init = _normal(self.input_scale)
        w_in = self.param("W_in", in_init, (n, inputs.shape[-1]))
        w_rec = self.param("W_rec", _normal(rec_std), (n, n))
        f = ACTIVATIONS[self.activation]
        drive = w_rec @ f(carry) + w_in @ inputs
        if self.use_bias:
            drive = drive + self.param("b", nn.initializers.zeros, (n,))
        x = (1.0 - self.alpha) * carry + self.alpha * drive
        return x, (x if self.output == "state" else f(x))

    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        del rng
        return jnp.zeros(input_shape[:-1] + (self.hidden,), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1


class VanillaRNN(nn.RNNCellBase):
    """Elman RNN ``h ← tanh(W_h h + W_x x + b)``; output ``y = h``.

    Init as PyTorch's ``nn.RNN`` is used by Singh et al.'s PPO agents: ``W_h ~ N(0, g²/N)``
    (std ``g/√N``, ``gain_exponent = 1``), ``W_x ~ N(0, 1/N)``, ``b = 0``.
    """

    hidden: int
    use_bias: bool = True

    def __post_init__(self):
        check_range("model.hidden", self.hidden, 1, integer=True)
        super().__post_init__()

    gain_exponent = 1

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        n = self.hidden
        w_x = self.param("W_in", _normal(1.0 / jnp.sqrt(n)), (n, inputs.shape[-1]))
        w_h = self.param("W_rec", _normal(1.0 / jnp.sqrt(n)), (n, n))
        drive = w_h @ carry + w_x @ inputs
        if self.use_bias:
            drive = drive + self.param("b", nn.initializers.zeros, (n,))
        h = jnp.tanh(drive)
        return h, h

    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        del rng
        return jnp.zeros(input_shape[:-1] + (self.hidden,), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1


PARAMETRIZATIONS = ("normalized", "ger_barak")


class LowRankRNN(nn.RNNCellBase):
    """Low-rank CTRNN ``x ← (1 − α) x + α (W f(x) + W_in u + b)`` with ``W`` of rank ``rank``.

    Parametrisations (``parametrization``, static):
      - ``"normalized"`` (default): ``W = U Vᵀ / N`` with ``U, V ~ N(0, 1)`` of shape
        ``[N, rank]`` (mean-field convention; ``W`` has entries of order ``1/N``).
      - ``"ger_barak"``: Ger & Barak's rank-1 linear controller (``P_Model``):
        ``W = U Vᵀ`` with ``U, V ~ N(0, 1/N)`` (std ``1/√N``). ``W`` has the same distribution
        as under ``"normalized"``, but the parameters are ``u = U_normalized/√N`` and
        ``v = V_normalized/√N``, so plain SGD moves ``u`` and ``v`` ``N`` times faster relative
        to ``W_in`` and the readout — the authors' learning speed. Use it with the readout
        ``z ~ U(±1/√N)`` (what :func:`jaxrnn.rules.controller.default_readout` picks for this
        cell) and, as the authors, a frozen input vector (``trainable = ["U", "V", "W_out"]``).
        Their frozen random bulk ``W_random = g·N(0, 1/N)`` is not modelled (their runs use
        ``g = 0``).

    Both: ``W_in ~ U(−1/√N, 1/√N)`` (Ger & Barak's input vector ``m``), ``b = 0``; the gain
    ``g`` scales ``U`` (``gain_exponent = 1``; ``g = 1`` is the authors' initialisation).
    Output ``y = x`` or ``f(x)`` as :class:`CTRNN`. :func:`recurrent_matrix` gives ``W`` and
    :func:`low_rank_factors` the ``(u, v)`` with ``W = u vᵀ`` exactly, for either
    parametrisation (the order parameters of ``jaxrnn.analysis.closed_loop``).

    Attributes (all static):
      hidden: number of units N.
      rank: rank of ``W`` (1 … N).
      alpha: ``dt/τ`` in ``(0, 1]``.
      activation: ``tanh``, ``shifted_tanh``, ``relu`` or ``linear``.
      output: ``"state"`` or ``"rate"``.
      use_bias: include the bias ``b``.
      parametrization: ``"normalized"`` or ``"ger_barak"``.
    """

    hidden: int
    rank: int = 1
    alpha: float = 1.0
    activation: str = "linear"
    output: str = "state"
    use_bias: bool = False
    parametrization: str = "normalized"

    def __post_init__(self):
        check_range("model.hidden", self.hidden, 1, integer=True)
        check_range("model.rank", self.rank, 1, self.hidden, integer=True)
        check_range("model.alpha", self.alpha, 0.0, 1.0, low_open=True)
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_choice("model.output", self.output, ("state", "rate"))
        check_choice("model.parametrization", self.parametrization, PARAMETRIZATIONS)
        super().__post_init__()

    gain_exponent = 1

    @property
    def factor_scale(self) -> float:
        """``c`` in ``W = c · U Vᵀ``: ``1/N`` (``"normalized"``) or ``1`` (``"ger_barak"``)."""
        return 1.0 if self.parametrization == "ger_barak" else 1.0 / self.hidden

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        n = self.hidden
        bound = 1.0 / jnp.sqrt(n)
        w_in = self.param(
            "W_in", lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound), (n, inputs.shape[-1])
        )
        std = 1.0 / np.sqrt(n) if self.parametrization == "ger_barak" else 1.0
        u = self.param("U", _normal(std), (n, self.rank))
        v = self.param("V", _normal(std), (n, self.rank))
        f = ACTIVATIONS[self.activation]
        recurrent = u @ (v.T @ f(carry))
        if self.parametrization != "ger_barak":
            recurrent = recurrent / n
        drive = recurrent + w_in @ inputs
        if self.use_bias:
            drive = drive + self.param("b", nn.initializers.zeros, (n,))
        # α = 1 (static): no 0·x term, so the step is the authors' h ← W h + m y to the bit
        x = drive if self.alpha == 1.0 else (1.0 - self.alpha) * carry + self.alpha * drive
        return x, (x if self.output == "state" else f(x))

    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        del rng
        return jnp.zeros(input_shape[:-1] + (self.hidden,), jnp.float32)

    @property
    def num_feature_axes(self) -> int:
        return 1


_RECURRENT_PARAM = {CTRNN: "W_rec", VanillaRNN: "W_rec", LowRankRNN: "U"}


def recurrent_matrix(cell: nn.Module, params: Any) -> jax.Array:
    """The effective ``[N, N]`` recurrent weight matrix of a jaxrnn cell's params.

    :class:`LowRankRNN`: ``U Vᵀ / N`` (``"normalized"``) or ``U Vᵀ`` (``"ger_barak"``).
    """
    if isinstance(cell, LowRankRNN):
        u, v = low_rank_factors(cell, params)
        return u @ v.T
    return params["params"]["W_rec"]


def low_rank_factors(cell: LowRankRNN, params: Any) -> tuple[jax.Array, jax.Array]:
    """``(u[N, rank], v[N, rank])`` with ``W = u vᵀ`` exactly, for either parametrisation.

    ``"ger_barak"``: the params ``(U, V)`` themselves; ``"normalized"``: ``(U, V / N)``. For
    rank 1, ``u[:, 0]``, ``v[:, 0]`` and the cell's ``W_in[:, 0] = m`` are the vectors of
    ``jaxrnn.analysis.closed_loop.overlaps(m, z, u, v)``.
    """
    if not isinstance(cell, LowRankRNN):
        fail("cell", type(cell).__name__, "a LowRankRNN")
    p = params["params"]
    return p["U"], p["V"] * cell.factor_scale


def init_params(cell: nn.Module, key: jax.Array, input_size: int, gain: jax.Array | float = 1.0) -> Any:
    """Initialise ``cell`` for inputs of size ``input_size`` with recurrent gain ``gain``.

    The recurrent parameter is drawn at unit gain and multiplied by ``gain ** gain_exponent``,
    so ``gain`` may be traced (vmapped over a population without recompiling).
    flax's own GRU/LSTM cells are initialised as flax does and ignore ``gain``.
    """
    carry = cell.initialize_carry(key, (input_size,))
    params = cell.init(key, carry, jnp.zeros((input_size,), jnp.float32))
    name = next((v for k, v in _RECURRENT_PARAM.items() if isinstance(cell, k)), None)
    if name is None:
        return params
    scale = jnp.asarray(gain, jnp.float32) ** cell.gain_exponent
    inner = dict(params["params"])
    inner[name] = inner[name] * scale
    return {**params, "params": inner}
