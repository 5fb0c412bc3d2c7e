"""jaxrnn: train and dissect whole populations of recurrent networks with JAX."""

from jaxrnn.tasks import make, registered

__version__ = "0.1.0"

__all__ = ["__version__", "make", "registered"]
