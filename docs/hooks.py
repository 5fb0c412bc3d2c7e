"""MkDocs hooks: pages generated from the code at build time.

- ``<!-- config-reference -->`` becomes the reference of every config table, generated from the
  dataclasses (``RunConfig``, ``ModelConfig``), the task registry (constructor arguments =
  static fields, the params dataclass = sweepable fields) and the rule registry (static factory
  arguments, ``HParams`` fields), with defaults and the descriptions of their docstrings
  (``Attributes:`` / ``Args:`` sections).
- ``<!-- api: PACKAGE -->`` becomes ``::: PACKAGE`` and ``::: PACKAGE.MODULE`` for every public
  module of the package (found on disk, so a new module gets its API page without an edit);
  the study modules are left to their study pages.
- ``<!-- study: NAME -->`` becomes the study's page body: its figures (``FIGURES``), its claims
  table from ``docs/studies/NAME/claims.json`` when one was measured and committed, and its
  module's API (``::: jaxrnn.studies.MODULE``) when the module exists.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- docstring sections


def doc_section(obj, names=("Attributes", "Args")) -> dict[str, str]:
    """``name -> description`` from a Google-style ``Attributes:`` / ``Args:`` section of ``obj``."""
    doc = inspect.getdoc(obj) or ""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() in {f"{n}:" for n in names} or re.match(r"^\s*(Attributes|Args)\s*\(.*\):\s*$", lines[i]):
            base = len(lines[i]) - len(lines[i].lstrip())
            i += 1
            current = None
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base):
                line = lines[i]
                item = re.match(r"^\s*([A-Za-z_][\w, ]*?)(?:\s*\([^)]*\))?:\s*(.*)$", line)
                indent = len(line) - len(line.lstrip())
                if item and (current is None or indent <= current[1]):
                    names_ = [n.strip() for n in item.group(1).split(",")]
                    current = (names_, indent)
                    for n in names_:
                        out[n] = item.group(2).strip()
                elif current is not None and line.strip():
                    for n in current[0]:
                        out[n] = (out[n] + " " + line.strip()).strip()
                i += 1
            continue
        i += 1
    return out


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    import numpy as np

    if value is inspect.Parameter.empty:
        return "required"
    if hasattr(value, "shape") or isinstance(value, (np.generic,)):
        array = np.asarray(value)
        value = array.item() if array.ndim == 0 else array.tolist()
    if isinstance(value, float):
        value = float(f"{value:.6g}")
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value is None:
        return "—"
    return f"`{value}`"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- config reference


def config_reference() -> str:
    import jaxrnn.rules  # noqa: F401  (registers the rules)
    from jaxrnn.models import CTRNN, LowRankRNN
    from jaxrnn.population.config import DYNAMIC_MODEL_FIELDS, ModelConfig, RunConfig
    from jaxrnn.rules.registry import get_rule, registered_rules
    from jaxrnn.tasks import registry as tasks

    out = []
    run_doc = doc_section(RunConfig)
    out += ["## `[run]`", "", "How long and how a population trains (`RunConfig`; never swept).", "",
            _table(("field", "default", "description"),
                   [(f"`{f.name}`", _value(_default(f)), run_doc.get(f.name, "")) for f in dataclasses.fields(RunConfig)])]
    model_doc = {**doc_section(LowRankRNN), **doc_section(CTRNN), **doc_section(ModelConfig)}
    out += ["", "## `[model]`", "", inspect.getdoc(ModelConfig).split("\n\n")[0], "",
            _table(("field", "default", "tier", "description"),
                   [(f"`{f.name}`", _value(_default(f)), "sweepable" if f.name in DYNAMIC_MODEL_FIELDS else "static",
                     model_doc.get(f.name, "")) for f in dataclasses.fields(ModelConfig)])]
    out += ["", "## `[task]`", "",
            "`name` picks a registered task. Its constructor arguments are **static** (they fix shapes: "
            "members that differ in one are compiled separately); the fields of its params dataclass are "
            "**sweepable** (vmapped within one compiled group). Give a list to sweep a field."]
    for name in tasks.registered():
        cls = tasks.task_class(name)
        fixed = tasks.fixed_static(name)
        task, params = tasks.make(name)
        cls_doc = {}
        for klass in reversed([k for k in cls.__mro__ if k.__module__.startswith("jaxrnn")]):
            cls_doc.update({**doc_section(klass), **doc_section(klass.__init__)})
        params_doc = doc_section(type(params))
        rows = [(f"`{p}`", _value(default), "static",
                 cls_doc.get(p, "") + (" (fixed by this name)" if p in fixed else ""))
                for p, default in tasks.static_defaults(name).items()]
        rows += [(f"`{f.name}`", _value(getattr(params, f.name)), "sweepable", params_doc.get(f.name, ""))
                 for f in dataclasses.fields(params)]
        summary = (inspect.getdoc(cls) or "").split("\n")[0]
        out += ["", f"### `name = \"{name}\"`", "", f"`{cls.__module__}.{cls.__qualname__}`: {summary}", "",
                _table(("field", "default", "tier", "description"), rows)]
    out += ["", "## `[rule]`", "",
            "`name` picks a registered learning rule. Static fields are arguments of the rule's factory "
            "(they fix program structure); sweepable fields are leaves of its `HParams` pytree. "
            "`gain` is set in `[model]`, the task params in `[task]`."]
    for name in registered_rules():
        entry = get_rule(name)
        factory_doc = doc_section(entry.factory)
        hparams_doc = doc_section(entry.hparams_cls)
        signature = inspect.signature(entry.factory)
        rows = []
        for field in sorted(entry.static):
            default = entry.defaults.get(field, signature.parameters[field].default
                                         if field in signature.parameters else inspect.Parameter.empty)
            rows.append((f"`{field}`", _value(default), "static", factory_doc.get(field, "")))
        for f in dataclasses.fields(entry.hparams_cls):
            if f.name in ("task", "gain"):
                continue
            default = entry.defaults.get(f.name, _default(f))
            rows.append((f"`{f.name}`", _value(default), "sweepable", hparams_doc.get(f.name, "")))
        summary = (inspect.getdoc(entry.factory) or "").split("\n")[0]
        out += ["", f"### `name = \"{name}\"`", "", f"`{entry.factory.__module__}.{entry.factory.__name__}`: {summary}",
                "", _table(("field", "default", "tier", "description"), rows)]
    out += ["", "## `[grid]`", "",
            _table(("field", "default", "description"),
                   [("`seeds`", "`1`", "a count `n` (seeds `0 … n−1`) or a list of seeds; the innermost axis of "
                                        "the product")]),
            "", "A population that is not one product is a union of `[[subgrid]]` tables: see "
                "[`jaxrnn.population.parse`](api/population.md#jaxrnn.population.parse)."]
    return "\n".join(out) + "\n"


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return inspect.Parameter.empty


# ----------------------------------------------------------------------------- study pages


def study_page(name: str) -> str:
    from jaxrnn.studies import STUDIES, study_module
    from jaxrnn.studies.claims import claims_markdown, load_claims

    module_name = STUDIES[name]
    try:
        module = study_module(name)
    except ValueError:
        module = None
    out = ["## Run it", "", "```bash", f"jaxrnn reproduce {name}                 # the laptop-CPU scale",
           f"jaxrnn reproduce {name} --full          # the study's own scale",
           f"jaxrnn report reproductions/{name}      # (re)write the HTML report", "```", ""]
    claims = ROOT / "docs" / "studies" / name / "claims.json"
    out += ["## Claims", ""]
    if claims.is_file():
        doc = load_claims(claims)
        table = claims_markdown(doc).split("\n", 2)[2]  # drop the Markdown title line
        out += [f"Measured with `{doc['command']}` at the **{doc['scale']}** scale (jaxrnn {doc['jaxrnn_version']}, "
                f"{doc['created']}).", "", table]
    else:
        out += ["!!! note \"Not yet measured for these pages\"",
                f"    No measured claims table is committed for this study yet (`docs/studies/{name}/claims.json`). "
                f"`jaxrnn reproduce {name}` writes one (`claims.json`, `claims.md`) beside its figures, and "
                "its report shows it with each claim's figure.", ""]
    if module is not None and getattr(module, "FIGURES", None):
        out += ["## Figures", "", _table(("file", "caption"), [(f"`{k}`", v) for k, v in module.FIGURES.items()]), ""]
    if module is not None:
        out += ["## API", "", f"::: {module_name}", ""]
        out += [f"::: {m}\n" for m in study_submodules(module_name)]
    else:
        out += ["!!! warning \"Module not in this version\"",
                f"    `{module_name}` is not part of this version of jaxrnn yet.", ""]
    return "\n".join(out)


def study_submodules(module_name: str) -> list[str]:
    """``jaxrnn.studies.ger_barak_figures`` etc.: the modules a study split off (same prefix)."""
    package, stem = module_name.rsplit(".", 1)
    folder = ROOT / Path(*package.split("."))
    return [f"{package}.{p.stem}" for p in sorted(folder.glob(f"{stem}_*.py"))]


def api_modules(package: str) -> list[str]:
    """``package`` and its public modules (sorted), without the study modules."""
    from jaxrnn.studies import STUDIES

    studies = {m.rsplit(".", 1)[1] for m in STUDIES.values()}
    folder = ROOT / Path(*package.split("."))
    names = [package]
    for path in sorted(folder.glob("*.py")):
        stem = path.stem
        if stem.startswith("_") or (package == "jaxrnn.studies" and stem.split("_")[0] in {s.split("_")[0] for s in studies}):
            continue
        names.append(f"{package}.{stem}")
    return names


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    for match in list(re.finditer(r"<!-- api: ([\w.]+) -->", markdown)):
        markdown = markdown.replace(match.group(0), "\n".join(f"::: {m}\n" for m in api_modules(match.group(1))))
    if "<!-- config-reference -->" in markdown:
        markdown = markdown.replace("<!-- config-reference -->", config_reference())
    match = re.search(r"<!-- study: ([\w-]+) -->", markdown)
    if match:
        markdown = markdown.replace(match.group(0), study_page(match.group(1)))
    return markdown
