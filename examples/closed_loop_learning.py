"""Ger & Barak (NeurIPS 2025, arXiv 2505.13567): learning dynamics of RNNs in closed loop.

    python examples/closed_loop_learning.py [--full] [--out runs/closed_loop_example] [--quiet]

The same as ``jaxrnn reproduce ger-barak [--full] --out DIR``: trains the study's populations
(kept under ``OUT/runs``, reloaded on a second call), writes the figures, ``claims.json`` and
``claims.md`` into ``OUT`` and prints the claims. What is trained at each scale, the figures and
the claims are documented in :mod:`jaxrnn.studies.ger_barak`.
"""

from __future__ import annotations

import argparse

from jaxrnn.studies import ger_barak


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the paper's scale (slow on a CPU)")
    parser.add_argument("--out", default="runs/closed_loop_example", help="folder of the figures, claims and runs/")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    return ger_barak.reproduce(args.out, scale="full" if args.full else "cpu", quiet=args.quiet)


if __name__ == "__main__":
    main()
