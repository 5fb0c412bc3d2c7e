"""Figures from stored results."""

from jaxrnn.plot.curves import condition_labels, plot_final_accuracy, plot_learning_curves

__all__ = ["condition_labels", "plot_final_accuracy", "plot_learning_curves"]
