"""Networks: flax cells, heads and ``rollout``.

flax's own ``nn.GRUCell`` / ``nn.OptimizedLSTMCell`` follow the same cell contract and are
re-exported for convenience.
"""

from flax.linen import GRUCell, OptimizedLSTMCell

from jaxrnn.models.cells import (
    ACTIVATIONS,
    CTRNN,
    LowRankRNN,
    VanillaRNN,
    activation_fn,
    init_params,
    low_rank_factors,
    recurrent_matrix,
)
from jaxrnn.models.heads import LinearReadout
from jaxrnn.models.rollout import rollout

__all__ = [
    "ACTIVATIONS",
    "CTRNN",
    "GRUCell",
    "LinearReadout",
    "LowRankRNN",
    "OptimizedLSTMCell",
    "VanillaRNN",
    "activation_fn",
    "init_params",
    "low_rank_factors",
    "recurrent_matrix",
    "rollout",
]
