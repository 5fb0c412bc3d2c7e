"""Ger & Barak (NeurIPS 2025, arXiv 2505.13567): learning dynamics of RNNs in closed loop.

    jaxrnn reproduce ger-barak [--full] [--out DIR]          # or: python examples/closed_loop_learning.py
    from jaxrnn.studies import ger_barak; doc = ger_barak.reproduce("runs/gb", scale="cpu")

Trains the study's populations with ``jaxrnn.population.run`` (kept under ``OUT/runs``; a second
call reloads them), analyses the params snapshots (:mod:`~jaxrnn.studies.ger_barak_analysis`),
draws the figures (:mod:`~jaxrnn.studies.ger_barak_figures`, captions in :data:`FIGURES`) and
writes the claims table (:mod:`~jaxrnn.studies.ger_barak_claims`: ``claims.json``, ``claims.md``).

Runs (the authors' ``code/utils.py`` and notebooks; the numbers per scale are in :data:`SCALES`):

- ``nonlinear``: tanh controllers (N = 100, g = 0.1, no bias), ``closed_loop`` SGD 1e-2, clip 1,
  batch 100, T = 50, one member per control cost ``reg_u`` (the authors' reg_U, summed over the
  batch; their run is 0.005, the one the main figures show) and seed.
- ``open_seed<s>``: white-noise open-loop student of the reg_u = 0.005 member of seed s (teacher:
  its final network; student: the same seed's update-0 network, as the authors').
- ``rank1``: the authors' rank-1 linear model (``P_Model``): ``LowRankRNN(100, rank=1,
  parametrization="ger_barak")``, ``m`` frozen, x0 ~ U(−2, 2), T = 50 (lr 0.01/T and clip T on
  this rule's summed loss = their SGD 0.01, clip 1 on the mean).
- Episode-length sweep (Fig. 4e): copies of the T = 50 rank-1 network at the middle of its stage 2
  trained with each T for a few dozen updates (:func:`~jaxrnn.studies.ger_barak_analysis.episode_length_sweep`),
  as the paper restarts its sweep from one mid-training point.
- ``tracking``: linear CTRNN (N = 100, α = 0.1, g = 0.2), W_in frozen, Adam 1e-3, no clipping,
  on the 2-D tracking task with x: 0.1, 0.3 Hz and y: 0.2, 0.4 Hz. ``tracking_open``: its
  open-loop student (teacher = the final closed-loop network driving the plant, student = the
  update-0 network, W_in trained, as the authors').

Scales. ``"test"`` exercises every step — the five runs, every figure, every claim row, the
report — in a few updates at batch 20 (tracking: 10 updates at batch 5), so its numbers mean
nothing. Its cost is XLA compiling, whatever the sizes: five population programs (init and chunk,
about 5 s of CPU each with the test suite's cheap code generation) and six analysis programs (the
episode-length sweep, gains, probes, rollouts from (1, 1), effective-loss paths, landscape);
everything else is NumPy or compiles once per shape, and slicing stored snapshots compiles
nothing. ``tests/test_ger_barak_reproduce.py`` runs it in the test suite's process (2026-12-03,
pytest's CPU time of the test on the shared 2-core machine, which varies by ±6 s from run to run):
41-54 s of CPU (33-44 s wall) at load 1.2-1.9, 47-58 s at load 4-7; main's code before this change
took 47-54 s and 65-68 s at the same loads. Stage by stage at load 4.4: training 25 s, analyses
6.5 s, figures 8 s, report 2.5 s. ``"cpu"`` (the default) is the paper's double-integrator runs at
one seed, the rank-1 run for 400 of the paper's 1,000 updates, and the tracking task for 2,000
updates at batch 50 — the paper needs ≈ 230 / 1,200 / 2,600 / 4,500 updates for its four
frequencies, so the default acquires the lower ones only, and Fig. 6 says which. ``"full"`` is the
paper's scale: three seeds, five control costs, 1,000 rank-1 updates, 5,000 tracking updates at
batch 100 (closed and open loop); slow on a CPU.

Wall time of the default scale (2026-12-03, the shared 2-core machine with other heavy jobs):
training 47 min (the five runs' recorded ``wall_time``: 228 + 380 + 105 + 908 + 1,196 s, 1,375 s of
it XLA compilation, most for the tracking programs; load not recorded, 15-20 that afternoon),
then analyses, figures and claims on the stored runs 3.8 min (``/usr/bin/time``: 101 s user CPU;
``uptime`` load 9.4 at the start, 9.2 at the end). Expect less on a quiet machine. With the
analyses' programs merged (48 compiled programs instead of 126 at the test scale), the same stored
runs' analyses, figures and claims took 64 s of CPU at load 2.6-4.2 against 72 s for the code
before at load 2.6, and gave the same claims table bit for bit. The measured claims table is
``docs/studies/ger-barak/claims.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxrnn import population
from jaxrnn.studies import claims as claims_lib
from jaxrnn.studies import ger_barak_analysis as an
from jaxrnn.studies import ger_barak_claims as gc
from jaxrnn.studies import ger_barak_figures as gf
from jaxrnn.studies import ger_barak_tracking as gt
from jaxrnn.studies.ger_barak_figures import FIGURES

STUDY = "ger-barak-2025"
SCALES = {
    "test": dict(seeds=[0], batch=20, nonlinear_updates=30, reg_u=[0.0, 0.005], open_updates=30,
                 rank1_updates=30, sweep_T=[10, 50], sweep_updates=8, tracking_updates=10, tracking_batch=5,
                 tracking_eval=5, effective_steps=20),
    "cpu": dict(seeds=[0], batch=100, nonlinear_updates=1000, reg_u=[0.0, 0.005, 0.25, 1.0], open_updates=1000,
                rank1_updates=400, sweep_T=[10, 25, 50, 100], sweep_updates=60, tracking_updates=2000,
                tracking_batch=50, tracking_eval=25, effective_steps=240),
    "full": dict(seeds=[0, 1, 2], batch=100, nonlinear_updates=1000, reg_u=[0.0, 0.005, 0.05, 0.25, 1.0],
                 open_updates=1000, rank1_updates=1000, sweep_T=[10, 20, 35, 50, 75, 100], sweep_updates=100,
                 tracking_updates=5000, tracking_batch=100, tracking_eval=50, effective_steps=240),
}
COMMANDS = {"test": "jaxrnn reproduce ger-barak (scale test)", "cpu": "jaxrnn reproduce ger-barak",
            "full": "jaxrnn reproduce ger-barak --full"}

__all__ = ["FIGURES", "SCALES", "reproduce"]


# ----------------------------------------------------------------------------- configs


def _config(updates, task, model, rule, seeds, eval_every=1) -> dict:
    run = {"num_updates": updates, "eval_every": eval_every, "chunk_updates": 100 * eval_every,
           "snapshots": updates // eval_every + 1, "snapshot_spacing": "linear", "stop_metric": "test_cost",
           "stop_threshold": float("inf")}  # a snapshot after every evaluation (every update by default)
    return {"run": run, "task": task, "model": model, "rule": rule, "grid": {"seeds": seeds}}


def nonlinear_config(s: dict) -> dict:
    rule = {"name": "closed_loop", "optimizer": "sgd", "learning_rate": 1e-2, "max_grad_norm": 1.0,
            "batch": s["batch"], "num_steps": an.MAIN_T, "reg_u": s["reg_u"],
            "trainable": ["W_in", "W_rec", "W_out"]}
    return _config(s["nonlinear_updates"], {"name": "double-integrator"}, an.NONLINEAR_MODEL, rule, s["seeds"])


def open_loop_config(s: dict, teacher: Path, member: int, seed: int) -> dict:
    rule = {"name": "open_loop", "teacher": str(teacher), "teacher_member": member, "white_noise": True,
            "optimizer": "sgd", "learning_rate": 1e-2, "max_grad_norm": 1.0, "batch": s["batch"],
            "num_steps": an.MAIN_T}
    return _config(s["open_updates"], {"name": "double-integrator"}, an.NONLINEAR_MODEL, rule, [seed])


def rank1_config(s: dict, T: int = an.MAIN_T) -> dict:
    rule = {"name": "closed_loop", "optimizer": "sgd", "learning_rate": 0.01 / T, "max_grad_norm": float(T),
            "batch": s["batch"], "num_steps": T, "reg_u": 0.0, "trainable": ["U", "V", "W_out"]}
    task = {"name": "double-integrator", "init_half_width": 2.0, "max_steps_in_episode": T}
    return _config(s["rank1_updates"], task, dict(an.RANK1_MODEL), rule, s["seeds"])


def tracking_config(s: dict) -> dict:
    rule = {"name": "closed_loop", "optimizer": "adam", "learning_rate": 1e-3, "max_grad_norm": float("inf"),
            "batch": s["tracking_batch"], "reg_u": 0.0}
    return _config(s["tracking_updates"], {"name": "tracking-2d"}, an.TRACKING_MODEL, rule, s["seeds"][:1],
                   s["tracking_eval"])


def tracking_open_config(s: dict, teacher: Path) -> dict:
    rule = {"name": "open_loop", "teacher": str(teacher), "teacher_member": 0, "white_noise": False,
            "optimizer": "adam", "learning_rate": 1e-3, "max_grad_norm": float("inf"), "batch": s["tracking_batch"]}
    return _config(s["tracking_updates"], {"name": "tracking-2d"}, an.TRACKING_MODEL, rule, s["seeds"][:1],
                   s["tracking_eval"])


# ----------------------------------------------------------------------------- runs and analyses


def _train(raw: dict, name: str, runs: Path, quiet: bool):
    return population.run(population.from_dict(raw, name=name), out=runs / name, quiet=quiet)


def train_tracking(s: dict, runs: Path, quiet: bool) -> dict:
    """Train (or reload) the tracking network and its open-loop student under ``runs``."""
    stores = {"tracking": _train(tracking_config(s), "tracking", runs, quiet)}
    stores["tracking_open"] = _train(tracking_open_config(s, runs / "tracking"), "tracking_open", runs, quiet)
    return stores


def train_all(s: dict, runs: Path, quiet: bool) -> dict:
    """Train (or reload) every population of scale ``s`` under ``runs``; returns the stores."""
    stores = {"nonlinear": _train(nonlinear_config(s), "nonlinear", runs, quiet)}
    stores["open"] = {seed: _train(open_loop_config(s, runs / "nonlinear",
                                                    an.member_index(stores["nonlinear"], seed, an.MAIN_REG_U), seed),
                                   f"open_seed{seed}", runs, quiet) for seed in s["seeds"]}
    stores["rank1"] = _train(rank1_config(s), "rank1", runs, quiet)
    return {**stores, **train_tracking(s, runs, quiet)}


def analyse(s: dict, stores: dict) -> dict:
    """Every number the figures and claims use (see :mod:`~jaxrnn.studies.ger_barak_analysis`)."""
    nl = stores["nonlinear"]
    cell = an.model_cell(an.NONLINEAR_MODEL)
    readout = an.default_readout(cell, 1)
    res: dict = {"scale": s, "seeds": s["seeds"], "closed": {}, "open": {}, "reg": {}, "rank1": {}}
    for seed in s["seeds"]:
        res["closed"][seed] = an.nonlinear_analysis(nl, an.member_index(nl, seed, an.MAIN_REG_U), cell, readout)
        res["open"][seed] = an.nonlinear_analysis(stores["open"][seed], 0, cell, readout)
        res["rank1"][seed] = an.rank1_analysis(stores["rank1"], an.member_index(stores["rank1"], seed))
    seed = s["seeds"][0]
    for reg in sorted(set(nl["rule.reg_u"].values.astype(float).tolist())):
        i = an.member_index(nl, seed, reg)
        res["reg"][reg] = {"analysis": res["closed"][seed] if np.isclose(reg, an.MAIN_REG_U)
                           else an.nonlinear_analysis(nl, i, cell, readout),
                           "W_rec": nl["params.cell.W_rec"].values[i][[0, -1]],
                           "state_cost": nl.state_cost.values[i]}
    r1 = res["rank1"][seed]
    res["fig3"] = an.stage1_comparison(r1)
    st = r1["stages"]
    end2 = st.stage3_start if st.stage3_start > 0 else len(r1["loss"])
    start = int(round((st.stage1_end + end2) / 2))  # middle of stage 2 (fixed before the runs)
    params0 = {k: {"params": {n: v[start] for n, v in mod["params"].items()}} for k, mod in r1["params"].items()}
    res["sweep"] = {"T": list(s["sweep_T"]), "start": start,
                    "eigs": an.episode_length_sweep(params0, s["sweep_T"], s["sweep_updates"],
                                                       batch=s["batch"])}
    for key in ("tracking", "tracking_open"):
        res[key] = tracking_analysis(stores[key])
    return res


def tracking_analysis(ds) -> dict:
    """Fig. 6's numbers of a stored tracking run (member 0): probe errors per snapshot, the update
    at which each frequency is acquired, losses, test costs and the recurrent weights."""
    params = an.snapshot_params(ds, 0)
    res = {"errors": an.probe_errors(an.model_cell(an.TRACKING_MODEL), params),
           "snapshot_update": ds.snapshot_update.values, "loss": ds.loss.values[0],
           "update": ds["update"].values, "evaluation_update": ds.evaluation_update.values,
           "test_cost": ds.val_test_cost.values[0], "W_rec": np.asarray(params["cell"]["params"]["W_rec"])}
    res["acquired"] = an.acquisition_updates(res["snapshot_update"], res["errors"])
    return res


def reproduce(out, *, scale: str = "cpu", quiet: bool = False) -> dict:
    """Run the reproduction at ``scale`` into ``out``; returns the claims document (module docstring)."""
    if scale not in SCALES:
        raise ValueError(f"scale = {scale!r} is not allowed: must be one of {list(SCALES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = SCALES[scale]
    stores = train_all(s, out / "runs", quiet)
    res = analyse(s, stores)
    for draw in gf.DRAW:
        draw(res, out, quiet)
    gt.fig6(res, out, scale, quiet)
    rows = gc.claims(res)
    doc = claims_lib.write_claims(out, STUDY, scale, COMMANDS[scale], rows)
    if not quiet:
        for line in gc.numbers(res) + claims_lib.summary_lines(doc):
            print(line, flush=True)
    return doc
