"""Checkpoints of a running population, written atomically, and the run's manifest.

Layout inside a run directory::

    run.json                         manifest: the parsed config (resume refuses a different one)
    checkpoint/<part>/state.npz      the runner's state after the last finished chunk
    checkpoint/<part>/chunk-<c>.npz  outputs (metrics, snapshots) of chunk c

``<part>`` names one population slice of one compiled group. Every file is written to a
temporary name in the same folder, flushed to disk, then moved over its final name
(``os.replace`` is atomic on POSIX), and ``state.npz`` — which says how many chunks are done — is
written only after the chunk's outputs. A ``kill -9`` at any moment therefore leaves either the
previous or the new checkpoint, never a torn one, and a resumed run recomputes at most the chunk
that was in flight. Randomness depends only on seeds and update numbers, so the resumed run's
numbers equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "run.json"
STORE_NAME = "results.zarr"
CHECKPOINT_DIR = "checkpoint"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:  # a full disk, Ctrl-C: leave the previous file, and no temporary one
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not error.filename:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` (``.npz``) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays in ``path``, or ``None`` if it does not exist."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _canonical(raw: dict[str, Any]) -> str:
    return json.dumps(raw, sort_keys=True, default=str)


def check_manifest(out: Path, raw_config: dict[str, Any], *, write: bool) -> bool:
    """Make sure ``out`` belongs to this config; write the manifest on first use.

    Returns ``True`` if the directory already holds a complete run of this config.

    Raises:
      ValueError: ``out`` holds a run of a different config, or results of unknown origin.
    """
    manifest = out / MANIFEST
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        if recorded.get("config") != json.loads(_canonical(raw_config)):
            raise ValueError(
                f"--out {str(out)!r} holds a run of a different config (see {manifest}); "
                "resuming it with this config would mix two experiments: choose another --out "
                "or delete that directory"
            )
        return bool(recorded.get("complete"))
    if (out / STORE_NAME).exists() or (out / CHECKPOINT_DIR).exists():
        raise ValueError(f"--out {str(out)!r} holds results without a manifest ({MANIFEST}): choose another --out")
    if write:
        out.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"config": json.loads(_canonical(raw_config)), "complete": False}, indent=1)
        _atomic_write(manifest, lambda handle: handle.write(payload.encode()))
    return False


OWN_FILES = (MANIFEST, CHECKPOINT_DIR, STORE_NAME, STORE_NAME + ".tmp", STORE_NAME + ".old",
             "learning_curves.png", "final_accuracy.png")


def check_out(out: Path, raw_config: dict[str, Any], *, overwrite: bool = False) -> str:
    """Check ``--out`` before anything starts, writing nothing (JAX-free).

    Returns ``"new"`` (nothing of jaxrnn's there), ``"resume"`` (an unfinished run of this
    config) or ``"complete"`` (a finished run of this config). With ``overwrite`` a run of another
    config (or results without a manifest) is reported as ``"stale"``: :func:`clear` removes it.

    Raises:
      ValueError: ``out`` is a file, is not writable, or holds another config's run (without
        ``overwrite``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out = {str(out)!r} is not allowed: must be a directory (it is a file)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out = {str(out)!r} is not allowed: must be a directory ({str(existing)!r} is a file)")
    if not _writable(existing):
        raise ValueError(f"--out = {str(out)!r} is not allowed: must be a writable directory "
                         f"({str(existing)!r} is read-only or not accessible)")
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("config") == json.loads(_canonical(raw_config)):
            return "complete" if recorded.get("complete") else "resume"
        if overwrite:
            return "stale"
        raise ValueError(
            f"--out = {str(out)!r} holds a run of a different config (see {manifest}): pass --overwrite to "
            "replace it, or choose another --out (resuming it with this config would mix two experiments)")
    if (out / STORE_NAME).exists() or (out / CHECKPOINT_DIR).exists():
        if overwrite:
            return "stale"
        raise ValueError(f"--out = {str(out)!r} holds results without a manifest ({MANIFEST}): pass --overwrite "
                         "to replace them, or choose another --out")
    return "new"


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried, then removed: root ignores mode bits)."""
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".jaxrnn-write-test-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def clear(out: Path) -> None:
    """Remove what jaxrnn wrote in ``out`` (manifest, checkpoints, store, figures); nothing else."""
    for name in OWN_FILES:
        path = Path(out) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def progress(out: Path) -> dict[str, int]:
    """Chunks done per checkpointed part of an unfinished run: ``{part: next_chunk}``."""
    folder = Path(out) / CHECKPOINT_DIR
    done = {}
    for part in sorted(folder.iterdir()) if folder.is_dir() else []:
        arrays = load_arrays(part / "state.npz")
        if arrays is not None:
            done[part.name] = int(arrays["next_chunk"])
    return done


def mark_complete(out: Path) -> None:
    """Record that the results store is complete, and drop the checkpoints."""
    manifest = out / MANIFEST
    recorded = json.loads(manifest.read_text())
    recorded["complete"] = True
    payload = json.dumps(recorded, indent=1)
    _atomic_write(manifest, lambda handle: handle.write(payload.encode()))
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)


class PartCheckpoint:
    """Checkpoint files of one population slice (``out/checkpoint/<name>``)."""

    def __init__(self, out: Path, name: str, enabled: bool = True):
        self.folder = out / CHECKPOINT_DIR / name
        self.enabled = enabled

    def save_chunk(self, chunk: int, outputs: dict[str, np.ndarray]) -> None:
        if self.enabled:
            save_arrays(self.folder / f"chunk-{chunk:06d}.npz", outputs)

    def save_state(self, state: dict[str, np.ndarray]) -> None:
        if self.enabled:
            save_arrays(self.folder / "state.npz", state)

    def load_state(self) -> dict[str, np.ndarray] | None:
        return load_arrays(self.folder / "state.npz")

    def load_chunk(self, chunk: int) -> dict[str, np.ndarray]:
        arrays = load_arrays(self.folder / f"chunk-{chunk:06d}.npz")
        if arrays is None:
            raise ValueError(f"checkpoint {self.folder} is missing chunk {chunk}: delete the run directory")
        return arrays
