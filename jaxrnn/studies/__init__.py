"""Reproductions of the three seed studies, one module per study.

Each study module (``mcmahan``, ``huang``, ``ger_barak``) is a thin composition of the library —
population runs, analyses, figures — that ends with a claims table
(:mod:`jaxrnn.studies.claims`): ``claims.json`` and ``claims.md`` beside the figures.
"""

from jaxrnn.studies.claims import Claim, decide, load_claims, validate_claims, write_claims

__all__ = ["Claim", "decide", "load_claims", "validate_claims", "write_claims"]
