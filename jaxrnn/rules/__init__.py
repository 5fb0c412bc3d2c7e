"""Learning rules, all with the ``(init, update, evaluate, network)`` shape of ``LearningRule``."""

from jaxrnn.rules.base import LearningRule
from jaxrnn.rules.bptt import BPTTHParams, BPTTState, bptt

__all__ = ["BPTTHParams", "BPTTState", "LearningRule", "bptt"]
