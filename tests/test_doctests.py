"""The usage examples (``>>>``) in the public API's docstrings, run as doctests.

Only modules whose examples are fast (no compiled training loop) are listed; a module added
here must keep its examples under a second or two. Each must hold at least one example, so a
module whose examples were removed is noticed.
"""

import doctest
import importlib

import pytest

MODULES = [
    "jaxrnn.studies",
    "jaxrnn.studies.claims",
    "jaxrnn.tasks.registry",
    "jaxrnn.analysis.linearize",
    "jaxrnn.report.collect",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (printed above)"
