"""Progress of a long run (tqdm): one bar over the whole run, rate and ETA without compilation.

The unit is the *network update* (one member advanced by one update), the same unit as the
benchmarks, so one bar covers every group and population slice however different their sizes:
``total = Σ_groups members × num_updates``. Rate and ETA are measured on training time only —
the clock stops while a group compiles (``with reporter.compiling(): ...``) — so a 25 s run
does not announce "21 min left" while its first group compiles. The bar shows the group (and
slice) being trained, and the members converged and diverged so far. A resumed run says where
it resumes ("resuming group 2 at update 300 of 2000"). ``quiet`` silences everything.
"""

from __future__ import annotations

import contextlib
import sys
import time

from tqdm.auto import tqdm


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """One bar for a run of ``total`` network updates; ``group(...)`` returns each slice's reporter."""

    def __init__(self, quiet: bool = False, total: int = 0, file=None):
        self.quiet = quiet
        self.total = int(total)
        self._file = file or sys.stderr
        self._bar = None
        self._done = 0            # network updates done (including resumed ones)
        self._trained = 0         # network updates trained in this process (for the rate)
        self._train_seconds = 0.0
        self._counts: dict[tuple, tuple[int, int]] = {}  # slice -> (converged, diverged)
        self._label = ""

    def _ensure_bar(self):
        if self._bar is None and not self.quiet:
            self._bar = tqdm(total=self.total or None, unit=" net-upd", unit_scale=True, file=self._file,
                             dynamic_ncols=True, leave=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} network updates{postfix}")
        return self._bar

    def write(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self._file)
        else:
            print(message, file=self._file)

    def _refresh(self) -> None:
        bar = self._ensure_bar()
        if bar is None:
            return
        converged = sum(c for c, _ in self._counts.values())
        diverged = sum(d for _, d in self._counts.values())
        rate = self._trained / self._train_seconds if self._train_seconds > 0 and self._trained else None
        parts = [self._label]
        if rate:
            parts.append(f"{rate:,.1f} net-upd/s")
            if self.total:
                parts.append(f"ETA {_duration(max(0, self.total - self._done) / rate)}")
        parts.append(f"converged {converged}, diverged {diverged}")
        bar.set_postfix_str(", ".join(p for p in parts if p), refresh=False)
        bar.n = self._done
        bar.refresh()

    def group(self, index: int, count: int, size: int, total_updates: int, label: str,
              part: int = 0, parts: int = 1) -> "Reporter":
        """The reporter of slice ``part`` of group ``index`` (``size`` members, ``total_updates`` each)."""
        return Reporter(self, (index, part), f"group {index + 1}/{count}" + (f" slice {part + 1}/{parts}" if parts > 1
                                                                            else "") + f" ({label})",
                        size, total_updates)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Reporter:
    """Progress of one population slice: ``reporter(updates_done, finished, size, ...)`` after each chunk."""

    def __init__(self, progress: Progress, key: tuple, label: str, size: int, total_updates: int):
        self.progress, self.key, self.label = progress, key, label
        self.size, self.total_updates = size, total_updates
        self._updates = 0
        self._last = None

    @contextlib.contextmanager
    def compiling(self):
        """Show that the slice's group compiles; the rate's clock does not run meanwhile."""
        p = self.progress
        p._label = f"{self.label}: compiling"
        p._refresh()
        try:
            yield
        finally:
            p._label = self.label
            self._last = time.perf_counter()

    def __call__(self, updates: int, finished: int, size: int, resumed: bool = False,
                 converged: int | None = None, diverged: int | None = None, final: bool = False) -> None:
        """``final``: the slice is done (every member stopped early, or the budget is spent)."""
        p = self.progress
        now = time.perf_counter()
        new = (updates - self._updates) * size
        if final:  # updates skipped because every member had stopped: done, at no cost
            pass
        elif resumed:
            p.write(f"resuming {self.label} at update {updates} of {self.total_updates} "
                    f"({finished}/{size} members finished)")
        elif self._last is not None:
            p._trained += new
            p._train_seconds += now - self._last
        self._last = now
        p._done += new
        self._updates = updates
        if converged is not None:
            p._counts[self.key] = (converged, diverged or 0)
        p._label = self.label
        p._refresh()

    def start(self) -> None:
        """Mark the start of training (after compilation) for the rate."""
        self._last = time.perf_counter()
