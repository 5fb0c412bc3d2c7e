"""Progress reporting for long runs (tqdm): updates/s, members finished, ETA; ``quiet`` silences it."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    """One bar per compiled group; call ``group(...)`` then the returned callback per chunk."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bar = None

    def group(self, index: int, count: int, size: int, total_updates: int, label: str):
        self.close()
        if self.quiet:
            return None
        self._bar = tqdm(
            total=total_updates,
            desc=f"group {index + 1}/{count} ({label}, {size} members)",
            unit="upd",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
        )
        done = {"n": 0}

        def report(updates: int, finished: int, size_: int) -> None:
            self._bar.update(updates - done["n"])
            done["n"] = updates
            self._bar.set_postfix_str(f"finished {finished}/{size_}, {self._bar.format_dict['rate'] or 0:.2f} upd/s")

        return report

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
