"""Every expected failure of the command line: exit code, one line naming the culprit, no traceback,
nothing written to --out, and neither JAX nor matplotlib nor xarray imported (what keeps a refusal
well under 2 s: importing JAX alone takes ~2 s here; the wall time is measured by
``benchmarks/quickstart.py``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
[run]
num_updates = 6
eval_every = 3
[task]
name = "rdm"
num_steps = 15
[model]
hidden = 6
[rule]
batch = 4
"""
CHILD = ("import sys; from jaxrnn.cli import main; code = main(sys.argv[1:]);"
         "heavy = [m for m in ('jax', 'matplotlib', 'xarray') if m in sys.modules];"
         "print('imported ' + ', '.join(heavy) if heavy else 'no jax'); sys.exit(code)")


def _toml(text):
    return ("toml", text)


# (case id, config file text or None, extra arguments, exit code, text the one-line message must contain)
RUN_CASES = [
    ("hidden-is-a-word", _toml(GOOD.replace("hidden = 6", 'hidden = "eight"')), [], 2, "model.hidden = 'eight'"),
    ("empty-sweep", _toml(GOOD.replace("num_steps = 15", "noise_std = []")), [], 2, "task.noise_std = []"),
    ("negative-noise", _toml(GOOD.replace("num_steps = 15", "noise_std = [0.1, -1.0]")), [], 2,
     "task.noise_std = -1.0"),
    ("unknown-task-field", _toml(GOOD.replace("num_steps = 15", "coherence = 0.2")), [], 2, "task.coherence"),
    ("unknown-table", _toml(GOOD + "[optimizer]\nname = 'adam'\n"), [], 2, "optimizer = "),
    ("unknown-task", _toml(GOOD.replace('"rdm"', '"dms"')), [], 2, "task.name = 'dms'"),
    ("missing-task-name", _toml(GOOD.replace('name = "rdm"', "")), [], 2, "task.name"),
    ("unknown-rule", _toml(GOOD + 'name = "sgd"\n'), [], 2, "rule.name = 'sgd'"),
    ("zero-learning-rate", _toml(GOOD + "learning_rate = 0.0\n"), [], 2, "rule.learning_rate = 0.0"),
    ("bad-activation", _toml(GOOD.replace("hidden = 6", 'activation = "softplus"')), [], 2, "model.activation"),
    ("num-updates-not-multiple", _toml(GOOD.replace("num_updates = 6", "num_updates = 7")), [], 2,
     "run.num_updates = 7"),
    ("duplicate-seeds", _toml(GOOD + "[grid]\nseeds = [1, 1]\n"), [], 2, "grid.seeds"),
    ("bad-subgrid", _toml(GOOD + '[[subgrid]]\nrule = { name = "ga", population_size = 0 }\n'), [], 2,
     "subgrid[1].rule.population_size = 0"),
    ("not-toml", _toml("[run\nnum_updates = 6"), [], 2, "not valid TOML"),
    ("missing-config", None, ["no-such-dir/x.toml"], 2, "config = 'no-such-dir/x.toml'"),
    ("unknown-packaged-config", None, ["nonesuch"], 2, "config = 'nonesuch'"),
    ("config-is-a-directory", ("dir", None), [], 2, "config = "),
    ("override-syntax", _toml(GOOD), ["task.noise_std"], 2, "override = 'task.noise_std'"),
    ("override-bad-seeds", _toml(GOOD), ["grid.seeds=oops"], 2, "grid.seeds = 'oops'"),
    ("override-out-of-range", _toml(GOOD), ["model.alpha=1.5"], 2, "model.alpha = 1.5"),
    ("override-empty-sweep", _toml(GOOD), ["task.noise_std=[]"], 2, "task.noise_std = []"),
    ("bad-memory-budget", _toml(GOOD), ["--memory-budget", "lots"], 2, "memory_budget = 'lots'"),
    ("bad-cpu-devices", _toml(GOOD), ["--cpu-devices", "0"], 2, "--cpu-devices = 0"),
    ("out-is-a-file", _toml(GOOD), ["@out-file"], 2, "must be a directory"),
    ("out-not-writable", _toml(GOOD), ["@out-readonly"], 2, "must be a writable directory"),
    ("out-holds-another-config", _toml(GOOD), ["@out-other"], 2, "--overwrite"),
]


@pytest.mark.parametrize("case, config, extra, code, text", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_refuses_bad_input_before_jax_and_writes_nothing(tmp_path, case, config, extra, code, text):
    out = tmp_path / "out"
    args = ["run"]
    if config is not None:
        path = tmp_path / "config.toml"
        if config[0] == "dir":
            path.mkdir()
        else:
            path.write_text(config[1])
        args.append(str(path))
    before = None
    for item in extra:
        if item == "@out-file":
            out.write_text("not a directory")
            before = out.read_text()
        elif item == "@out-readonly":  # no file can be made there, even by root
            out = Path("/proc/1/jaxrnn-out")
        elif item == "@out-other":
            out.mkdir()
            (out / "run.json").write_text(json.dumps({"config": {"task": {"name": "cdi"}}, "complete": True}))
            before = sorted(p.name for p in out.iterdir())
        else:
            args.append(item)
    args += ["--out", str(out), "--quiet"]
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("jaxrnn run: "), result.stderr
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == "no jax"
    if case == "out-is-a-file":
        assert out.read_text() == before
    elif case == "out-holds-another-config":
        assert sorted(p.name for p in out.iterdir()) == before
    else:
        assert not out.exists()


@pytest.mark.parametrize("command", ["info", "plot", "analyze"])
def test_missing_or_unfinished_run_is_refused(tmp_path, command):
    def call(directory):
        result = subprocess.run([sys.executable, "-c", CHILD, command, str(directory)], capture_output=True, text=True)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"jaxrnn {command}: DIR = ") and result.stdout.strip() == "no jax"
        return lines[0]

    assert "does not exist" in call(tmp_path / "missing")
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoint" / "g000-p000").mkdir(parents=True)
    (unfinished / "run.json").write_text(json.dumps({"config": {}, "complete": False}))
    assert "unfinished run" in call(unfinished) and "to resume" in call(unfinished)
    assert sorted(p.name for p in unfinished.iterdir()) == ["checkpoint", "run.json"]
