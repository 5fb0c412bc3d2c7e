"""The command line: run → store + figure, info, plot, and clear errors."""

import logging
import shutil

import jax
import numpy as np
import pytest

from jaxrnn import population
from jaxrnn.cli import main, use_cpu_devices

TINY = """
[run]
name = "tiny"
num_updates = 6
eval_every = 3
chunk_updates = 3
snapshots = 2
[task]
name = ["rdm", "cdi"]
noise_std = 0.3
num_steps = 15
[model]
hidden = 6
[rule]
batch = 4
num_validation_trials = 20
[grid]
seeds = 2
"""


class _Compiles(logging.Handler):
    """Counts JAX's "Finished XLA compilation of jit(NAME)" log records (``jax.log_compiles``)."""

    def __init__(self, name):
        super().__init__(logging.DEBUG)
        self.name_, self.count = name, 0

    def emit(self, record):
        self.count += f"Finished XLA compilation of jit({self.name_})" in record.getMessage()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `jaxrnn run` of TINY, shared by the tests that read its results (read-only), with the
    number of chunk programs it compiled."""
    config = tmp_path_factory.mktemp("tiny") / "tiny.toml"
    config.write_text(TINY)
    out = config.parent / "out"
    compiles = _Compiles("chunk")
    logging.getLogger("jax").addHandler(compiles)
    try:
        with jax.log_compiles(True):
            assert main(["run", str(config), "--out", str(out), "--quiet", "--no-compile-cache"]) == 0
    finally:
        logging.getLogger("jax").removeHandler(compiles)
    return out, compiles


def test_run_info_plot(tiny_run, tmp_path, capsys):
    run, compiles = tiny_run
    out = tmp_path / "out"
    shutil.copytree(run, out)
    assert compiles.count == 2  # two groups of two chunks each: each group compiles once
    assert (out / "results.zarr").is_dir() and (out / "learning_curves.png").stat().st_size > 10_000
    ds = population.load(out)
    assert ds.sizes["member"] == 4 and list(ds["task.name"].values) == ["rdm", "rdm", "cdi", "cdi"]
    assert ds.attrs["config"] == TINY
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny: 4 members, 6 updates" in text
    rdm_row = next(line for line in text.splitlines() if "· rdm" in line)
    final_acc = [r[np.isfinite(r)][-1] for r in ds.val_accuracy.values[:2]]
    assert f"{np.mean(final_acc):.3f}" in rdm_row and rdm_row.split()[3] == "2"
    assert main(["plot", str(out)]) == 0
    assert (out / "final_accuracy.png").stat().st_size > 5_000


def test_bad_config_exits_with_message(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(TINY.replace("noise_std = 0.3", "noise_std = -0.3"))
    assert main(["run", str(config), "--out", str(tmp_path / "x"), "--quiet", "--no-compile-cache"]) == 2
    err = capsys.readouterr().err
    assert "task.noise_std = -0.3" in err and "must be" in err
    assert not (tmp_path / "x").exists()
    assert main(["run", "no-such-config", "--no-compile-cache"]) == 2
    assert "default" in capsys.readouterr().err  # lists the packaged configs


def test_packaged_configs_parse():
    names = population.packaged_configs()
    assert {"default", "mcmahan-bptt"} <= set(names)
    default = population.load_config("default")
    assert len(default.members()) == 12
    assert set(default.sweep_axes()) == {"task.name", "task.noise_std"}
    full = population.load_config("mcmahan-bptt")
    assert len(full.members()) == 50 * 3 * 6


def test_analyze_adds_fixed_points_and_distances_to_the_store(tiny_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(tiny_run[0], out)
    assert main(["analyze", str(out), "--num-starts", "8", "--quiet"]) == 0
    ds = population.load(out)
    d = ds["svcca_distance"].values
    assert d.shape == (4, 4)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-5)
    np.testing.assert_allclose(d, d.T, atol=1e-6)
    assert ds["fp_x"].dims[0] == "member" and ds["fp_valid"].values.any()
    assert "loss" in ds  # the training results are kept


def test_run_splits_the_cpu_into_one_device_per_core_unless_told():
    """`jaxrnn run` gives XLA one CPU device per core (or --cpu-devices N) before JAX starts;
    an explicit XLA_FLAGS device count is left alone; a bad count is refused."""
    import os
    import subprocess
    import sys

    code = ("import sys, jax\nfrom jaxrnn.cli import use_cpu_devices\n"
            "print(use_cpu_devices(int(sys.argv[1]) if sys.argv[1] != 'None' else None), jax.device_count('cpu'))")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}

    def devices(arg, **extra):
        out = subprocess.run([sys.executable, "-c", code, arg], env={**env, **extra}, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    cores = os.cpu_count() or 1
    assert devices("None") == ([str(cores), str(cores)] if cores > 1 else ["None", "1"])
    assert devices("3") == ["3", "3"]
    assert devices("1") == ["None", "1"]
    assert devices("3", XLA_FLAGS="--xla_force_host_platform_device_count=2") == ["None", "2"]
    with pytest.raises(ValueError, match="--cpu-devices = 0"):
        use_cpu_devices(0)


def test_run_whose_results_do_not_fit_in_memory_is_refused(tmp_path, monkeypatch, capsys):
    """Results kept on the host, counted by hand: CTRNN N = 6 with 1 (RDM) or 4 (CDI) inputs and
    one output, 2 snapshots, float32 metrics (8 per update and validation: 6 updates, 2 validations)."""
    from jaxrnn.population import planner, train

    config = population.from_dict(__import__("tomllib").loads(TINY))
    groups = population.group_members(config)
    rdm = (6 * 1 + 6 * 6 + 6 + 6) * 4 * 2 + 4 * 8 * (6 + 2)
    cdi = (6 * 4 + 6 * 6 + 6 + 6) * 4 * 2 + 4 * 8 * (6 + 2)
    assert [train.host_result_bytes(g, g[0].run) for g in groups] == [2 * rdm, 2 * cdi]
    monkeypatch.setattr(planner, "available_memory", lambda: 4096)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    assert main(["run", str(path), "--out", str(tmp_path / "x"), "--quiet", "--no-compile-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxrnn run: memory:") and "--yes" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
