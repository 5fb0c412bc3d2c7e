"""Griffe extension for the API pages: Sphinx roles in docstrings become Markdown code.

jaxrnn's docstrings mark references as ``:func:`name```, ``:class:`~pkg.mod.Name```, ...
(readable in ``help()``); mkdocstrings renders Markdown, so the role prefix is dropped and a
leading ``~`` keeps only the last dotted part: ``:func:`~jaxrnn.population.run``` -> ```run```.
"""

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc|const|py:\w+):`~?([^`]+)`")


def _replace(match: re.Match) -> str:
    target = match.group(1)
    shown = target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target
    return f"`{shown}`"


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_replace, obj.docstring.value)
