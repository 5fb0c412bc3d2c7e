"""Scale-out and fault tolerance: devices, processes, SIGKILL + resume, memory budget.

Each scenario runs in fresh interpreters (device count and distributed runtime are fixed at JAX
start-up) and is compared with a plain single-process, single-device run of the same config.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

from jaxrnn import population

CONFIG = """
[run]
name = "scale"
num_updates = 24
eval_every = 3
chunk_updates = 3
snapshots = 3
stop_threshold = 2.0
[task]
name = "cdi"
noise_std = [0.2, 0.6]
num_steps = 25
[model]
hidden = 8
[rule]
batch = 8
num_validation_trials = 30
learning_rate = [1e-3, 1e30]
[grid]
seeds = [0, 1]
"""
COMPARED = ["loss", "grad_norm", "val_accuracy", "val_loss", "converged_update", "diverged", "params.cell.W_rec",
            "params.cell.W_in", "params.readout.W_out"]


def _assert_same_results(a: xr.Dataset, b: xr.Dataset, rtol=0.0, atol=0.0):
    for name in COMPARED:
        np.testing.assert_allclose(a[name].values.astype(float), b[name].values.astype(float),
                                   rtol=rtol, atol=atol, err_msg=name)
    for coord in ("seed", "task.noise_std", "rule.learning_rate"):
        np.testing.assert_array_equal(a[coord].values, b[coord].values)


# `jaxrnn run` in a child that counts XLA compilations: every backend compile request, the ones
# the persistent cache answered, and the requests for the group's chunk program.
COUNTING_CLI = textwrap.dedent("""
    import json, logging, signal, sys
    # Ctrl-C as in a terminal: a parent that ignores SIGINT (pytest-xdist's workers do) passes
    # SIG_IGN on through exec, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import jax
    counts = {"compiles": 0, "cache_hits": 0, "chunk_compiles": 0}
    def on_duration(name, secs, **kwargs):
        counts["compiles"] += name == "/jax/core/compile/backend_compile_duration"
    def on_event(name, **kwargs):
        counts["cache_hits"] += name == "/jax/compilation_cache/cache_hits"
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    class ChunkCompiles(logging.Handler):
        def emit(self, record):
            counts["chunk_compiles"] += "Finished XLA compilation of jit(chunk)" in record.getMessage()
    logging.getLogger("jax").addHandler(ChunkCompiles())
    jax.config.update("jax_log_compiles", True)
    if len(sys.argv) > 2 and sys.argv[2] == "--pause-after-chunk":  # a window in which to press Ctrl-C
        import pathlib, time
        from jaxrnn.population import checkpoint
        save_chunk, marker = checkpoint.PartCheckpoint.save_chunk, pathlib.Path(sys.argv[3])
        def pausing(self, chunk, outputs):
            save_chunk(self, chunk, outputs)
            if chunk == 2:
                marker.write_text("paused")
                time.sleep(600)
        checkpoint.PartCheckpoint.save_chunk = pausing
        del sys.argv[2:4]
    from jaxrnn.cli import main
    try:
        code = main(sys.argv[2:])
    finally:
        with open(sys.argv[1], "w") as handle:
            json.dump(counts, handle)
    sys.exit(code)
""")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-process, single-device run, made the same way as the others.

    Its compiled programs go to a persistent compilation cache the module's later runs share.
    Over its 8 chunks the group's chunk program is compiled once (each chunk's state comes back
    sharded as it went in)."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "scale.toml").write_text(CONFIG)
    result, counts = _counting(folder, "run", folder / "scale.toml", "--out", folder / "out", "--quiet",
                               "--compile-cache", folder / "xla-cache")
    assert result.returncode == 0, result.stderr
    assert counts["chunk_compiles"] == 1 and counts["compiles"] > counts["cache_hits"]
    return population.load(folder / "out"), folder / "scale.toml"


def _counting(folder, *args, pause=None):
    """``jaxrnn ARGS`` in a counting child; returns ``(CompletedProcess, counts)`` (or the Popen with pause)."""
    counts = folder / f"counts-{len(list(folder.glob('counts-*')))}.json"
    extra = ["--pause-after-chunk", str(pause)] if pause else []
    command = [sys.executable, "-c", COUNTING_CLI, str(counts), *extra, *map(str, args)]
    if pause:
        return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), counts
    result = subprocess.run(command, env=_env(), capture_output=True, text=True)
    return result, json.loads(counts.read_text())


def test_ctrl_c_then_the_same_command_resumes_to_identical_results(reference, tmp_path):
    """SIGINT between writing a chunk's outputs and its state: exit 130 with a one-line message,
    no temporary file left; the same command resumes, compiles nothing (the persistent cache of
    the reference run holds every program), and ends with the uninterrupted run's numbers."""
    ds, config = reference
    out, marker = tmp_path / "out", tmp_path / "paused"
    cache = config.parent / "xla-cache"
    args = ("run", config, "--out", out, "--quiet", "--compile-cache", cache)
    proc, _ = _counting(tmp_path, *args, pause=marker)
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.startswith("jaxrnn run:")]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert len(lines) == 1 and "interrupted" in lines[0] and "same command" in lines[0]
    assert not list(out.rglob("*.tmp")) and not (out / "results.zarr").exists()
    resumed, counts = _counting(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert counts["compiles"] - counts["cache_hits"] == 0, counts  # a second process compiles nothing
    _assert_same_results(population.load(out), ds)


def _env(XLA_FLAGS="", **extra):
    """The test process's environment for a child, whose device count is its own: a device-count
    flag is dropped from ``XLA_FLAGS`` (``jaxrnn run`` then gives one CPU device per core), the
    cheap-compile flags of ``conftest.py`` are kept, and ``XLA_FLAGS`` here is appended."""
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    return {**os.environ, "XLA_FLAGS": " ".join(kept + XLA_FLAGS.split()), **extra}


def _jaxrnn(config, *args, env=None, **kwargs):
    """``jaxrnn run CONFIG ARGS --quiet``, sharing the reference run's persistent compilation cache."""
    cache = ["--compile-cache", str(config.parent / "xla-cache")]
    return subprocess.run([sys.executable, "-m", "jaxrnn.cli", "run", str(config), *map(str, args), "--quiet", *cache],
                          env=env or _env(), capture_output=True, text=True, **kwargs)


def test_four_fake_devices_equal_one_device(reference, tmp_path):
    ds, config = reference
    result = _jaxrnn(config, "--out", tmp_path / "out", env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert result.returncode == 0, result.stderr
    sharded = population.load(tmp_path / "out")
    assert "cpu:3" in sharded.attrs["devices"].replace(" ", "").lower() or "id=3" in sharded.attrs["devices"]
    _assert_same_results(sharded, ds, rtol=1e-5, atol=1e-6)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_write_the_same_store_as_one(reference, tmp_path):
    ds, config = reference
    port = _free_port()
    common = [config, "--out", tmp_path / "out", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
              "--compile-cache", config.parent / "xla-cache"]
    procs = [subprocess.Popen([sys.executable, "-m", "jaxrnn.cli", "run", *map(str, common), "--process-id", str(i),
                               "--quiet"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    merged = population.load(tmp_path / "out")
    assert len(eval(merged.attrs["devices"].replace("true", "True"))) == 2  # noqa: S307 - our own JSON list
    _assert_same_results(merged, ds, rtol=1e-5, atol=1e-6)


CRASH_DURING_WRITE = textwrap.dedent("""
    import os, signal, sys
    from jaxrnn.cli import use_cpu_devices
    use_cpu_devices(None)  # as `jaxrnn run` does, before the import below starts JAX's back-end
    from jaxrnn.population import checkpoint
    writes = {"n": 0}
    original = checkpoint._atomic_write
    def crashing(path, write):
        writes["n"] += 1
        if writes["n"] == int(sys.argv[3]):
            with open(path.with_name(path.name + ".tmp"), "wb") as handle:
                handle.write(b"torn")               # half-written temporary file
            os.kill(os.getpid(), signal.SIGKILL)    # killed in the middle of a checkpoint write
        original(path, write)
    checkpoint._atomic_write = crashing
    from jaxrnn.cli import main
    main(["run", sys.argv[1], "--out", sys.argv[2], "--quiet", "--compile-cache", sys.argv[4]])
""")


@pytest.mark.parametrize("crash_write", [2, 5, 10])
def test_sigkill_during_checkpoint_write_then_resume(reference, tmp_path, crash_write):
    ds, config = reference
    out = tmp_path / "out"
    crashed = subprocess.run([sys.executable, "-c", CRASH_DURING_WRITE, str(config), str(out), str(crash_write),
                              str(config.parent / "xla-cache")],
                             env=_env(), capture_output=True, text=True)
    assert crashed.returncode == -signal.SIGKILL
    assert not (out / "results.zarr").exists()
    resumed = _jaxrnn(config, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_results(population.load(out), ds)


DISK_FULL = textwrap.dedent("""
    import errno, sys
    import numpy as np
    savez, calls = np.savez, {"n": 0}
    def full(handle, **arrays):  # the disk fills up in the middle of the third checkpoint file
        calls["n"] += 1
        if calls["n"] == 3:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        savez(handle, **arrays)
    np.savez = full
    from jaxrnn.cli import main
    sys.exit(main(["run", sys.argv[1], "--out", sys.argv[2], "--quiet", "--compile-cache", sys.argv[3]]))
""")


def test_full_disk_is_a_one_line_error_and_leaves_the_checkpoint_intact(reference, tmp_path):
    _, config = reference
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", DISK_FULL, str(config), str(out), str(config.parent / "xla-cache")],
                            env=_env(), capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("jaxrnn run: cannot write") and "No space left" in lines[0]
    assert not list(out.rglob("*.tmp"))
    state = np.load(out / "checkpoint" / "g000-p000" / "state.npz")  # the last complete checkpoint
    assert int(state["next_chunk"]) == 1


def test_sigkill_at_random_times_then_resume(reference, tmp_path):
    ds, config = reference
    out = tmp_path / "out"
    for delay in (3.0, 6.0):
        proc = subprocess.Popen([sys.executable, "-m", "jaxrnn.cli", "run", str(config), "--out", str(out), "--quiet",
                                 "--compile-cache", str(config.parent / "xla-cache")],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed = _jaxrnn(config, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_results(population.load(out), ds)
    again = _jaxrnn(config, "--out", out)  # a complete run is loaded, not re-trained
    assert again.returncode == 0


def test_resume_with_a_different_config_is_refused(reference, tmp_path):
    ds, config = reference
    out = tmp_path / "out"
    population.run(population.load_config(config), out=out, quiet=True)
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("hidden = 8", "hidden = 9"))
    result = _jaxrnn(other, "--out", out)
    assert result.returncode == 2
    assert "different config" in result.stderr and str(out) in result.stderr


MEMORY_CHILD = textwrap.dedent("""
    import os, sys, json, threading, time
    import jax, jax.numpy as jnp, numpy as np
    from jaxrnn import population

    def rss():  # resident set size now, from /proc (ru_maxrss is 0 on some sandboxes)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.ones(3)))  # start the runtime
    before, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    config = population.from_dict({
        "run": {"num_updates": 4, "eval_every": 2, "chunk_updates": 2, "snapshots": 0, "stop_threshold": 2.0},
        "task": {"name": "rdm", "num_steps": 750},
        "model": {"hidden": 50},
        "rule": {"batch": 200, "num_validation_trials": 50},
        "grid": {"seeds": int(sys.argv[2])}})
    budget = None if sys.argv[1] == "none" else sys.argv[1]
    ds = population.run(config, quiet=True, memory_budget=budget)
    done.set()
    sampler.join()
    after = max(peak[0], rss())
    plan = population.planner.plan_group(config.members(), config.run,
                                         None if budget is None else population.config_text.parse_bytes(budget))
    print(json.dumps({"growth": after - before, "slice": plan.population_chunk, "remat": plan.rule_overrides,
                      "per_member": plan.bytes_per_member, "loss": np.nan_to_num(ds.loss.values).tolist()}))
""")


def test_memory_planner_keeps_the_run_under_its_budget():
    """Peak RSS attributable to the population stays within the budget.

    RSS is sampled from /proc/self/statm every 2 ms in the child (``ru_maxrss`` reads 0 in some
    sandboxes). A one-member run measures what does not depend on the population (JAX runtime,
    compiler, host copies): about 360 MiB here. The 8-member run without a budget needs ~110 MiB more than
    that; with a 64 MiB budget the planner splits it into slices and the excess stays under the
    budget plus a 64 MiB allowance for the noise of RSS high-water marks (the planner's own
    compile, allocator fragmentation) — still far below the unbudgeted excess.
    """
    import json

    runs = {}
    for name, budget, seeds in (("single", "none", 1), ("whole", "none", 8), ("budgeted", "64MiB", 8)):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, budget, str(seeds)], env=_env(),
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        runs[name] = json.loads(out.stdout.strip().splitlines()[-1])
    single, whole, budgeted = runs["single"], runs["whole"], runs["budgeted"]
    if single["growth"] <= 0:
        pytest.skip("resident memory is not observable through /proc/self/statm here")
    budget = 64 * 2**20
    assert whole["slice"] == 8 and budgeted["slice"] < 8
    assert budgeted["slice"] * budgeted["per_member"] <= budget
    noise = 64 * 2**20
    assert whole["growth"] - single["growth"] > budget  # without the planner the budget is exceeded
    assert budgeted["growth"] - single["growth"] < budget + noise
    assert budgeted["growth"] < whole["growth"]
    np.testing.assert_allclose(budgeted["loss"], whole["loss"], rtol=1e-4)


def test_population_map_runs_blocks_on_each_device_and_equals_vmap():
    """Two CPU devices, 7 members each in blocks of 3 + 3 + 1: the numbers of one jax.vmap."""
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from jaxrnn.population.mapping import population_map
        from jaxrnn.population.sharding import population_mesh, shard
        assert jax.device_count() == 2

        def fn(key, w, x):
            return jnp.tanh(w @ x + jax.random.normal(key, x.shape)), jnp.sum(w * w)

        P = 14
        keys = jax.random.split(jax.random.PRNGKey(0), P)
        w = jax.random.normal(jax.random.PRNGKey(1), (P, 5, 5))
        x = jax.random.normal(jax.random.PRNGKey(2), (P, 5))
        want = jax.jit(jax.vmap(fn))(keys, w, x)
        mesh = population_mesh()
        mapped = jax.jit(population_map(fn, 3, mesh))
        got = mapped(*shard(jax.device_get((keys, w, x)), mesh))
        odd = mapped(keys[:13], w[:13], x[:13])  # 13 does not divide over 2 devices: a plain vmap
        for a, b, c in zip(want, got, odd):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(np.asarray(c), np.asarray(a)[:13], rtol=1e-6, atol=1e-6)
        assert len(got[0].sharding.device_set) == 2
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
