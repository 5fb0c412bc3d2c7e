"""Which parts of the PPO recipe make the Huang et al. pendulum agents learn? A population sweep.

Every member is the study's agent (VanillaRNN(64) with one-layer 64-unit tanh heads, PPO, 100
updates × 1,024 environment steps, Pendulum-v1 PO or FO) trained by ``jaxrnn.population.run``
from one config: the sweep *is* a jaxrnn population. Each member is scored on 20 deterministic
episodes (the validation set, the same starts for every member) after every update; the
table reports, per recipe and task, the final return over seeds and the largest drop of a
member's final return below its own best (the "late collapse" of the issue).

Designs (``--design``):

- ``screen``: a 2^(4−1) fractional factorial of resolution IV (8 recipes; generator D = ABC)
  over four two-level factors of the update — A ``gamma`` 0.99/0.9, B ``normalize_rewards``
  0/1, C ``anneal_updates`` 0/100 (linear learning-rate decay to 0 over the run), D
  ``target_kl`` 0/0.02 (KL early stopping) — at the baseline's learning rate 1e-3, advantage
  normalisation on; 2 seeds × PO/FO = 32 members, one compiled program per task. Main effects
  are not aliased with two-factor interactions (those are aliased in pairs). The main-effect
  table gives, per factor and task, the mean final return at each level (4 recipes × 2 seeds
  = 8 members each), their difference and Welch's t-test p.

  Why this small: on the shared 2-core machine (load average ≈ 15–18 while it ran) one member
  update took ≈ 0.7 s, so a first 2^(9−4) design (also over learning rate, entropy, initial σ,
  observation normalisation and minibatch count; 192 members) would have taken about 4 hours
  and was stopped. Observation normalisation, which changes the compiled program, is left out of
  the screen (the rule supports it, ``normalize_observations``).
- ``refine``: the screen's significant helps kept (reward normalisation: PO +182, p = 0.02;
  FO +143) and its significant harm dropped (KL early stopping at 0.02: PO −164, p = 0.04 — it
  stopped most updates after a few minibatch steps), with learning-rate annealing (FO +130; the
  FO agents that annealed lost ≤ 20 from their best, those that did not up to 360): reward
  normalisation + annealing at γ 0.99, 0.95 and 0.9 (the screen's best PO recipe was γ 0.9 with
  reward normalisation, −483, best −262), at twice the learning rate, and with a smaller
  initial policy σ (log σ₀ = −1); 3 seeds × PO/FO = 30 members.

    python benchmarks/ppo_recipe_sweep.py --design screen     # writes results/ppo_recipe_screen.{md,json}
    python benchmarks/ppo_recipe_sweep.py --design refine

The config each design ran is written to ``benchmarks/configs/ppo_recipe_<design>.toml`` (the
run store goes to ``--out``, default ``runs/ppo_recipe_<design>``, and resumes there).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TASKS = ("pendulum-po", "pendulum-fo")

# The study's settings before the sweep (configs/huang-pendulum.toml at the time): lr 1e-3, γ 0.99.
BASELINE = {"gamma": 0.99, "learning_rate": 1e-3, "normalize_rewards": False, "anneal_updates": 0.0,
            "target_kl": 0.0, "ent_coef": 0.005, "init_log_std": 0.0, "normalize_observations": False,
            "num_minibatches": 4}
FIXED = {"name": "ppo", "num_envs": 8, "num_steps": 128, "num_epochs": 10, "hidden_head": 64,
         "learning_rate": 1e-3, "gae_lambda": 0.95, "clip_eps": 0.2, "vf_coef": 0.5, "max_grad_norm": 0.5, "reward_scale": 0.01,
         "num_eval_episodes": 20}

# screen: factor letter -> (field, level −, level +)
FACTORS = {
    "A": ("gamma", 0.99, 0.9),
    "B": ("normalize_rewards", False, True),
    "C": ("anneal_updates", 0.0, 100.0),
    "D": ("target_kl", 0.0, 0.02),
}
GENERATORS = {"D": "ABC"}
BASIC = "ABC"

# refine: the screen's best recipe and its variations
REFINE_BASE = {"normalize_rewards": True, "anneal_updates": 100.0}
REFINE = [{}, {"gamma": 0.95}, {"gamma": 0.9}, {"learning_rate": 2e-3}, {"init_log_std": -1.0}]


def screen_design() -> list[dict]:
    """The recipes of the fractional design (rows of ±1 per factor, mapped to values)."""
    rows = []
    for signs in itertools.product((-1, 1), repeat=len(BASIC)):
        level = dict(zip(BASIC, signs))
        for factor, word in GENERATORS.items():
            level[factor] = int(np.prod([level[c] for c in word]))
        rows.append({FACTORS[f][0]: FACTORS[f][1 if s < 0 else 2] for f, s in level.items()})
    return rows


def refine_design() -> list[dict]:
    return [{**REFINE_BASE, **r} for r in REFINE]


def build_config(design: str, seeds: int, num_updates: int) -> dict:
    recipes = screen_design() if design == "screen" else refine_design()
    raw = {
        "base_only": True,
        "run": {"name": f"ppo-recipe-{design}", "num_updates": num_updates, "eval_every": 1,
                "chunk_updates": min(num_updates, 25), "stop_metric": "return", "stop_threshold": float("inf"),
                "snapshots": 2, "snapshot_spacing": "linear"},
        "task": {"name": list(TASKS)},
        "model": {"cell": "vanilla", "hidden": 64, "gain": 1.0},
        "rule": dict(FIXED),
        "grid": {"seeds": seeds},
        "subgrid": [{"rule": dict(r)} for r in recipes],
    }
    return raw


def to_toml(raw: dict, header: str) -> str:
    """``raw`` as TOML (:func:`jaxrnn.population.config_text.config_toml`) under a comment header."""
    from jaxrnn.population.config_text import config_toml

    ordered = {"base_only": raw["base_only"], **{t: raw[t] for t in ("run", "task", "model", "rule", "grid")},
               "subgrid": raw["subgrid"]}
    return "\n".join(f"# {line}" if line else "#" for line in header.splitlines()) + "\n" + config_toml(ordered)


def member_table(ds, config) -> list[dict]:
    """One row per member: its recipe, task, seed and returns (final, best, at 50 %)."""
    val = ds["val_return"].values  # [member, evaluation]
    rows = []
    for m in config.members():
        r = val[m.index]
        rule = {k: v for k, v in m.rule.items() if k in BASELINE}
        rule.setdefault("normalize_observations", False)
        rows.append({"task": m.task["name"], "seed": m.seed, "recipe": rule, "final": float(r[-1]),
                     "best": float(np.nanmax(r)), "half": float(r[len(r) // 2 - 1]),
                     "diverged": bool(ds["diverged"].values[m.index])})
    return rows


def recipe_key(recipe: dict) -> tuple:
    return tuple(recipe.get(k, BASELINE[k]) for k in BASELINE)


def summarize(rows: list[dict]) -> list[dict]:
    table = {}
    for r in rows:
        table.setdefault(recipe_key(r["recipe"]), {}).setdefault(r["task"], []).append(r)
    out = []
    for key, by_task in table.items():
        entry = {"recipe": dict(zip(BASELINE, key))}
        for task, members in by_task.items():
            final = np.array([m["final"] for m in members])
            drop = np.array([m["best"] - m["final"] for m in members])
            entry[task] = {"seeds": [m["seed"] for m in members], "final": final.round(1).tolist(),
                           "mean": float(final.mean()), "worst_drop": float(drop.max()),
                           "mean_half": float(np.mean([m["half"] for m in members]))}
        out.append(entry)
    out.sort(key=lambda e: -min(e[t]["mean"] for t in TASKS if t in e))
    return out


def main_effects(rows: list[dict]) -> list[dict]:
    from scipy import stats

    effects = []
    for letter, (field, low, high) in FACTORS.items():
        for task in TASKS:
            a = np.array([r["final"] for r in rows if r["task"] == task and r["recipe"][field] == low])
            b = np.array([r["final"] for r in rows if r["task"] == task and r["recipe"][field] == high])
            t = stats.ttest_ind(b, a, equal_var=False)
            effects.append({"factor": letter, "field": field, "low": low, "high": high, "task": task,
                            "n_low": len(a), "n_high": len(b), "mean_low": float(a.mean()),
                            "mean_high": float(b.mean()), "effect": float(b.mean() - a.mean()),
                            "p": float(t.pvalue)})
    return effects


def short(recipe: dict) -> str:
    changed = {k: v for k, v in recipe.items() if BASELINE[k] != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "baseline"


def markdown(design: str, summary, effects, meta) -> str:
    lines = [f"# PPO recipe sweep: {design}", "",
             f"`{meta['command']}` — {meta['members']} members, wall {meta['wall_s']:.0f} s, "
             f"load average before/after {meta['load_before']} / {meta['load_after']} (2-core CPU, shared).", "",
             "Final return: mean of 20 deterministic Pendulum-v1 episodes after update 100 (the validation set); "
             "worst drop: the largest (best − final) over the seeds of a recipe. Changes from the baseline "
             "(lr 1e-3, γ 0.99, fixed reward scale 0.01, advantage normalisation, no annealing, no KL stop, "
             "entropy 0.005, log σ₀ 0, raw observations, 4 minibatches) are listed.", "",
             "| recipe | PO mean | PO finals | PO worst drop | FO mean | FO finals | FO worst drop |",
             "|---|---|---|---|---|---|---|"]
    for e in summary:
        po, fo = e.get("pendulum-po"), e.get("pendulum-fo")
        cells = [short(e["recipe"])]
        for t in (po, fo):
            cells += [f"{t['mean']:.0f}", " ".join(f"{x:.0f}" for x in t["final"]), f"{t['worst_drop']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if effects:
        lines += ["", "## Main effects (final return, level + minus level −; Welch t-test over members)", "",
                  "| factor | field | − → + | task | mean − | mean + | effect | p |", "|---|---|---|---|---|---|---|---|"]
        for f in effects:
            lines.append(f"| {f['factor']} | {f['field']} | {f['low']} → {f['high']} | {f['task'][-2:].upper()} | "
                         f"{f['mean_low']:.0f} | {f['mean_high']:.0f} | {f['effect']:+.0f} | {f['p']:.2g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--design", choices=("screen", "refine"), default="screen")
    parser.add_argument("--seeds", type=int, default=None, help="default: 2 (screen), 3 (refine)")
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--out", default=None)
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.design == "screen" else 3)
    from jaxrnn import population

    raw = build_config(args.design, seeds, args.updates)
    toml_path = HERE / "configs" / f"ppo_recipe_{args.design}.toml"
    toml_path.parent.mkdir(exist_ok=True)
    toml_path.write_text(to_toml(raw, f"PPO recipe sweep, design '{args.design}': written by "
                                      f"benchmarks/ppo_recipe_sweep.py (see its docstring)."))
    config = population.load_config(toml_path)
    out = Path(args.out or f"runs/ppo_recipe_{args.design}")
    load_before = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()
    ds = population.run(config, out=out, quiet=args.quiet)
    wall = time.perf_counter() - start
    rows = member_table(ds, config)
    summary = summarize(rows)
    effects = main_effects(rows) if args.design == "screen" else []
    meta = {"command": f"python benchmarks/ppo_recipe_sweep.py --design {args.design}", "members": len(rows),
            "wall_s": wall, "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
            "seeds": seeds, "updates": args.updates}
    results = Path(args.results)
    results.mkdir(exist_ok=True)
    (results / f"ppo_recipe_{args.design}.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "main_effects": effects, "members": rows}, indent=1))
    text = markdown(args.design, summary, effects, meta)
    (results / f"ppo_recipe_{args.design}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
