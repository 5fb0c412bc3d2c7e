"""Benchmark results → markdown tables, scaling plots and the README's performance section.

Every script in ``benchmarks/`` writes ``benchmarks/results/<name>-<device>.json`` with at least
``{"benchmark", "command", "machine", "rows": [{...}]}``; rows with a ``population`` and a
throughput field (``network_updates_per_s``, ``env_steps_per_s``, ...) are plotted against
population size, with ``peak_rss_bytes`` beside them. :func:`summarize` writes
``results/summary.md`` and ``results/scaling.png`` and, given a README with the markers
``<!-- perf:begin -->`` / ``<!-- perf:end -->``, replaces the text between them — so the README
only ever shows measured numbers, each with its machine and command.
"""

from __future__ import annotations

import json
from pathlib import Path

THROUGHPUT_KEYS = ("network_updates_per_s", "env_steps_per_s", "jax_network_updates_per_s", "networks_per_hour",
                   "updates_per_s")
BEGIN, END = "<!-- perf:begin -->", "<!-- perf:end -->"


def load_results(folder: str | Path) -> list[dict]:
    """All benchmark JSON files in ``folder`` that have rows, sorted by name."""
    results = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("rows"), list) and data["rows"]:
            data["_file"] = path.name
            results.append(data)
    return results


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _scalar_keys(rows: list[dict]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in keys and not isinstance(value, dict):
                keys.append(key)
    return keys


def markdown(results: list[dict]) -> str:
    """One section per benchmark: command, machine, load and a table of its rows."""
    lines = []
    for data in results:
        machine = data.get("machine", {})
        cpu = machine.get("device_kind") or machine.get("cpu") or machine.get("cpu_model") or machine.get("platform", "")
        lines.append(f"### {data.get('benchmark', data['_file'])}")
        lines.append("")
        lines.append(f"`{data.get('command', '?')}` — {cpu}, {machine.get('cpus', machine.get('cores', '?'))} cores"
                     + (f", measured {data['time']}" if "time" in data else "") + f" (`benchmarks/results/{data['_file']}`)")
        lines.append("")
        rows = data["rows"]
        keys = _scalar_keys(rows)
        lines.append("| " + " | ".join(keys) + " |")
        lines.append("|" + "---|" * len(keys))
        for row in rows:
            lines.append("| " + " | ".join(_fmt(row.get(k, "")) for k in keys) + " |")
        if data.get("targets"):
            lines.append("")
            lines.append("Targets: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in data["targets"].items()))
        lines.append("")
    return "\n".join(lines)


def plot_scaling(results: list[dict], path: str | Path) -> Path | None:
    """Throughput and peak memory against population size, one line per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = []
    for data in results:
        rows = [r for r in data["rows"] if "population" in r and r.get("kind", "population") == "population"]
        key = next((k for k in THROUGHPUT_KEYS if rows and all(k in r for r in rows)), None)
        if key and len(rows) > 1:
            series.append((data.get("benchmark", data["_file"]), key, rows))
    if not series:
        return None
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    for name, key, rows in series:
        rows = sorted(rows, key=lambda r: r["population"])
        pops = [r["population"] for r in rows]
        ax_t.plot(pops, [r[key] for r in rows], "o-", label=f"{name} ({key})")
        if all("peak_rss_bytes" in r for r in rows):
            ax_m.plot(pops, [r["peak_rss_bytes"] / 2**30 for r in rows], "o-", label=name)
    for ax, label in ((ax_t, "throughput (per second)"), (ax_m, "peak RSS (GiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("population size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_readme(readme: str | Path, text: str) -> bool:
    """Replace the text between the perf markers of ``readme``; False if it has none."""
    readme = Path(readme)
    if not readme.exists():
        return False
    content = readme.read_text()
    if BEGIN not in content or END not in content:
        return False
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return True


def summarize(results_dir: str | Path, readme: str | Path | None = None) -> list[Path]:
    """Write ``summary.md`` and ``scaling.png`` next to the JSON results (and the README section)."""
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    written = []
    if not results:
        return written
    text = markdown(results)
    summary = results_dir / "summary.md"
    summary.write_text("# Benchmark results\n\nGenerated by `jaxrnn bench` from the JSON files here.\n\n" + text)
    written.append(summary)
    figure = plot_scaling(results, results_dir / "scaling.png")
    if figure:
        written.append(figure)
        text += "\n![throughput and peak memory against population size](benchmarks/results/scaling.png)\n"
    if readme is not None and update_readme(readme, text):
        written.append(Path(readme))
    return written
