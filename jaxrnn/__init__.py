"""jaxrnn: train and dissect whole populations of recurrent networks with JAX.

Submodules load lazily, so ``jaxrnn.distributed.initialize`` can run before anything (gymnax
included) initialises the XLA back-end — a requirement of ``jax.distributed.initialize``.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("analysis", "distributed", "lapack_guard", "models", "plot", "population", "rules", "studies", "tasks")


def __getattr__(name):
    if name in ("make", "registered"):
        return getattr(importlib.import_module("jaxrnn.tasks"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxrnn.{name}")
    raise AttributeError(f"module 'jaxrnn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), "make", "registered", *_SUBMODULES])


__all__ = ["__version__", "make", "registered"]
