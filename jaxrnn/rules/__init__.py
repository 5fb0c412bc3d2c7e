"""Learning rules, all with the ``(init, update, evaluate, network)`` shape of ``LearningRule``.

Each rule registers itself in :mod:`jaxrnn.rules.registry` so configs can name it.
"""

from jaxrnn._checks import check_choice, check_range
from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.bptt import KERNELS, BPTTHParams, BPTTState, bptt
from jaxrnn.rules.bptt import conformance_example as bptt_example
from jaxrnn.rules.full_force import FullForceHParams, FullForceState, full_force  # registers "full_force"
from jaxrnn.rules.ga import GAHParams, GAState, ga  # registers "ga"
from jaxrnn.rules.registry import get_rule, register_rule, registered_rules, rule_fields
from jaxrnn.rules.closed_loop import ClosedLoopHParams, ClosedLoopState, closed_loop  # registers "closed_loop"
from jaxrnn.rules.open_loop import OpenLoopHParams, OpenLoopState, open_loop  # registers "open_loop"
from jaxrnn.rules.ppo import PPOHParams, PPOState, ppo  # registers "ppo"
from jaxrnn.rules.hebbian import HebbianHParams, HebbianState, hebbian  # registers "hebbian"
from jaxrnn.rules.recurrent_sac import SACHParams, SACState, recurrent_sac  # registers "recurrent_sac"


def _check_bptt(values):
    check_range("rule.learning_rate", values["learning_rate"], 0.0, low_open=True)
    check_range("rule.init_state_scale", values["init_state_scale"], 0.0)
    if values["max_grad_norm"] != float("inf"):
        check_range("rule.max_grad_norm", values["max_grad_norm"], 0.0, low_open=True)
    check_range("rule.batch", values["batch"], 1, integer=True)
    check_range("rule.num_validation_trials", values["num_validation_trials"], 1, integer=True)
    check_choice("rule.kernel", values["kernel"], KERNELS)


register_rule(
    "bptt",
    bptt,
    static={"batch", "trainable", "num_validation_trials", "shared_initial_state", "remat", "kernel"},
    hparams_cls=BPTTHParams,
    check=_check_bptt,
    example=bptt_example,
)

__all__ = [
    "BPTTHParams",
    "BPTTState",
    "ClosedLoopHParams",
    "ClosedLoopState",
    "FullForceHParams",
    "FullForceState",
    "GAHParams",
    "GAState",
    "HebbianHParams",
    "HebbianState",
    "LearningRule",
    "OpenLoopHParams",
    "OpenLoopState",
    "PPOHParams",
    "PPOState",
    "SACHParams",
    "SACState",
    "bptt",
    "closed_loop",
    "full_force",
    "ga",
    "get_rule",
    "open_loop",
    "ppo",
    "recurrent_sac",
    "hebbian",
    "register_rule",
    "registered_rules",
    "rule_fields",
]
