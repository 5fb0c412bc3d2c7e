"""One tiny real population run per test process, shared by the tests that only read a store.

``toy_run()`` trains ``report_study.TOY_TOML`` (6 BPTT CTRNNs on RDM, 15-step trials, 9 updates)
with ``jaxrnn run`` once, in a temporary directory removed at exit, and returns the run directory.
Readers must not write into it (copy it first).
"""

import atexit
import shutil
import tempfile
from pathlib import Path

from report_study import TOY_TOML

_RUNS: dict[str, Path] = {}


def toy_run() -> Path:
    if "toy" not in _RUNS:
        from jaxrnn.cli import main

        root = Path(tempfile.mkdtemp(prefix="jaxrnn-toy-run-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        (root / "toy.toml").write_text(TOY_TOML)
        assert main(["run", str(root / "toy.toml"), "--out", str(root / "toy"), "--quiet"]) == 0
        _RUNS["toy"] = root / "toy"
    return _RUNS["toy"]
