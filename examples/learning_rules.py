"""McMahan, Kleinman & Kao (NeurIPS 2021): learning rule shapes representations, not attractors.

A thin wrapper of :func:`jaxrnn.studies.mcmahan.reproduce` (the same as ``jaxrnn reproduce
mcmahan``): trains the study's population (``--full``: exactly ``jaxrnn/configs/mcmahan.toml``,
1,920 networks, an accelerator job; default: the same config at CPU scale — 150-step trials,
noise scaled to keep each level's difficulty, 3 seeds, N-CDI at N = 3 and 6), analyses the networks that met the 90 %
criterion next to the same networks untrained, and writes the figures, ``claims.md`` and
``members.md`` into ``--out``. Re-running with the same ``--out`` resumes.

    python examples/learning_rules.py [--out reproductions/mcmahan] [--full] [--precomputed]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxrnn.studies import mcmahan


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reproductions/mcmahan"))
    parser.add_argument("--full", action="store_true", help="the packaged 1,920-network config (accelerator)")
    parser.add_argument("--precomputed", action="store_true",
                        help="score silhouettes on the distances, not the authors' distance rows")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    return mcmahan.reproduce(args.out, scale="full" if args.full else "cpu", quiet=args.quiet,
                             convention="precomputed" if args.precomputed else "rows")


if __name__ == "__main__":
    main()
