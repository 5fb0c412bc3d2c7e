"""The benchmark summary: tables and README section come only from the JSON results."""

import json

from jaxrnn.bench import BEGIN, END, summarize


def test_summary_tables_plot_and_readme_section(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = [{"population": p, "network_updates_per_s": 10.0 * p, "peak_rss_bytes": 2**20 * p} for p in (1, 4, 16)]
    (results / "demo-cpu.json").write_text(json.dumps(
        {"benchmark": "demo", "command": "python benchmarks/demo.py", "machine": {"cpus": 2}, "rows": rows}))
    (results / "broken.json").write_text("{not json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Performance\n{BEGIN}\nold numbers\n{END}\n\n## After\n")
    written = summarize(results, readme=readme)
    assert {p.name for p in written} == {"summary.md", "scaling.png", "README.md"}
    text = readme.read_text()
    assert "old numbers" not in text and "## After" in text
    assert "`python benchmarks/demo.py`" in text
    assert "| 16 | 160 | 16,777,216 |" in text  # the measured row, verbatim
    assert (results / "scaling.png").stat().st_size > 5000
