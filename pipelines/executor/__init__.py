"""Executors: ``make_executor(recipe, ops)`` picks one by ``recipe.executor_type``."""
from __future__ import annotations

import importlib

# executor_type -> "module:class"; modules are imported only when chosen (ray is optional)
EXECUTORS = {
    "local": "pipelines.executor.local:LocalExecutor",
    "default": "pipelines.executor.local:LocalExecutor",   # Data-Juicer's name for it
    "ray": "pipelines.executor.ray:RayExecutor",
}


def make_executor(recipe, ops):
    """The executor named by ``recipe.executor_type``, bound to the recipe and its ops."""
    try:
        target = EXECUTORS[recipe.executor_type]
    except KeyError:
        raise ValueError(f"executor_type: unknown executor '{recipe.executor_type}' "
                         f"(known: {', '.join(sorted(EXECUTORS))})") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(recipe, ops)
