"""Task registry: ``jaxrnn.make(name, **overrides) -> (task, params)``.

A registered factory builds the task object (static structure: sizes, number of contexts,
episode length) and its default params (a frozen pytree of sweepable leaves). ``make`` routes
each keyword override to the constructor or to the params by field name, so
``jaxrnn.make("cdi", noise_std=0.5, num_steps=200)`` sets a sweepable param and a static size
in one call. Unknown names fail with a ``ValueError`` listing what is allowed.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from jaxrnn._checks import fail
from jaxrnn.tasks.base import cast_like

_REGISTRY: dict[str, Callable[[], tuple[Any, Any]]] = {}
_STATIC: dict[str, dict[str, Any]] = {}


def register(name: str, task_cls: type, **static: Any) -> None:
    """Register ``name`` as ``task_cls(**static)`` with overridable static and param fields."""
    if name in _REGISTRY:
        raise ValueError(f"task name {name!r} is already registered")
    _REGISTRY[name] = task_cls
    _STATIC[name] = dict(static)


def registered() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_REGISTRY)


def static_fields(name: str) -> list[str]:
    """Constructor (static) fields a config may set for task ``name``."""
    _check_name(name)
    signature = inspect.signature(_REGISTRY[name].__init__)
    return [p for p in signature.parameters if p != "self"]


def task_class(name: str) -> type:
    """The class registered as ``name`` (``"ncdi-4"`` → ``NCDI``)."""
    _check_name(name)
    return _REGISTRY[name]


def fixed_static(name: str) -> dict[str, Any]:
    """The constructor arguments the name itself fixes (``"ncdi-4"`` → ``{"num_contexts": 4}``)."""
    _check_name(name)
    return dict(_STATIC[name])


def static_defaults(name: str) -> dict[str, Any]:
    """Each static field's value when a config leaves it unset: fixed by the name, else the
    constructor's default (``inspect.Parameter.empty`` for a required argument)."""
    parameters = inspect.signature(task_class(name).__init__).parameters
    fixed = fixed_static(name)
    return {f: fixed.get(f, parameters[f].default) for f in static_fields(name)}


def param_fields(name: str) -> list[str]:
    """Sweepable param fields of task ``name``."""
    task = _build(name, {})
    return [f.name for f in dataclasses.fields(task.default_params)]


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        fail("task.name", name, "one of the registered tasks: " + ", ".join(registered()))


def _build(name: str, static: dict[str, Any]) -> Any:
    _check_name(name)
    return _REGISTRY[name](**{**_STATIC[name], **static})


def make(name: str, **overrides: Any) -> tuple[Any, Any]:
    """Build a registered task and its default params, with overrides routed by field name.

    Returns:
      ``(task, params)``: the task object and its ``default_params`` with overrides applied.

    Raises:
      ValueError: unknown task name (the message lists registered ones), unknown field,
        or an override value the task rejects.

    Example:
        >>> import jax, jaxrnn
        >>> task, params = jaxrnn.make("cdi", noise_std=0.5, num_steps=100)   # a param and a static size
        >>> task.input_size, float(params.noise_std)
        (4, 0.5)
        >>> trials = jax.jit(task.sample, static_argnums=2)(jax.random.PRNGKey(0), params, 8)
        >>> trials.inputs.shape, trials.targets.shape, trials.mask.shape
        ((8, 100, 4), (8, 100, 1), (8, 100))
        >>> jaxrnn.make("cdi", noise_std=-1.0)
        Traceback (most recent call last):
        ...
        ValueError: task.noise_std = -1.0 is not allowed: ...
    """
    allowed_static = static_fields(name)
    static = {k: v for k, v in overrides.items() if k in allowed_static}
    task = _build(name, static)
    params = task.default_params
    allowed_params = [f.name for f in dataclasses.fields(params)]
    dynamic = {}
    for key, value in overrides.items():
        if key in static:
            continue
        if key not in allowed_params:
            fail(f"task.{key}", value, "a field of task " + repr(name) + ": "
                 + ", ".join(sorted(allowed_static + allowed_params)))
        dynamic[key] = value
    params = params.replace(**dynamic)
    if hasattr(task, "check_params"):
        task.check_params(params)
    return task, cast_like(params, task.default_params)
