"""Huang, Singh & Rajan (2024), Fig. 1 b–e: pendulum agents that learn, and the geometry of their dynamics.

A thin wrapper of :func:`jaxrnn.studies.huang.reproduce` (the same as ``jaxrnn reproduce huang``):

    python examples/pendulum_geometry.py                  # CPU scale: 5 seeds × {PO, FO} per algorithm
    python examples/pendulum_geometry.py --full           # the study: packaged config huang-pendulum
    python examples/pendulum_geometry.py --scale test --out /tmp/pg    # seconds of training, exercises the pipeline

Writes to ``--out`` (default ``runs/pendulum_geometry``): the population runs (resumable), the
figures, ``claims.json`` and ``claims.md``.
"""

from __future__ import annotations

import argparse

from jaxrnn.studies import huang


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the study's scale (packaged config)")
    parser.add_argument("--scale", choices=tuple(huang.SCALES), default="cpu")
    parser.add_argument("--out", default="runs/pendulum_geometry")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    huang.reproduce(args.out, scale="full" if args.full else args.scale, quiet=args.quiet)
    print(f"figures and claims in {args.out}")


if __name__ == "__main__":
    main()
