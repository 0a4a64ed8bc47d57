"""ganbench: fair, plugin-based benchmarking of GAN variants under a fixed compute budget.

Plugin authors need only this module::

    from ganbench import hookimpl, VariantSpec, Variant

Importing ganbench has no side effects: no plugin manager, no torch import, no files touched.
The heavier names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ganbench.hookspecs import hookimpl
from ganbench.specs import (
    HIGHER,
    LOWER,
    NEITHER,
    TASK_GENERATION,
    TASK_SUPER_RESOLUTION,
    DatasetSpec,
    MetricSpec,
    ProbeSpec,
    VariantSpec,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ (PEP 562).
_LAZY = {
    "Variant": "ganbench.variant",
    "GenerativeVariant": "ganbench.variant",
    "SuperResolutionVariant": "ganbench.variant",
    "VariantContext": "ganbench.variant",
    "Batch": "ganbench.data",
    "BatchSource": "ganbench.data",
    "DatasetSplits": "ganbench.data",
    "DataRequest": "ganbench.data",
    "Evaluation": "ganbench.evaluation",
    "ProbeContext": "ganbench.probes",
    "ProbeResult": "ganbench.probes",
    "ReferenceContext": "ganbench.probes",
    "Attributes": "ganbench.data.attributes",
    "MetricValues": "ganbench.evaluation",
    "RunConfig": "ganbench.config",
    "Budget": "ganbench.budget",
    "run": "ganbench.harness.runner",
    "evaluate": "ganbench.harness.evaluate",
    "EvaluateConfig": "ganbench.harness.evaluate",
    "tune": "ganbench.harness.tune",
    "TuneConfig": "ganbench.harness.tune",
    "UsageError": "ganbench.errors",
}

__all__ = [
    "hookimpl",
    "TASK_GENERATION",
    "TASK_SUPER_RESOLUTION",
    "HIGHER",
    "LOWER",
    "NEITHER",
    "DatasetSpec",
    "MetricSpec",
    "ProbeSpec",
    "VariantSpec",
    *_LAZY,
]

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.data.attributes import Attributes
    from ganbench.budget import Budget
    from ganbench.config import RunConfig
    from ganbench.data import Batch, BatchSource, DataRequest, DatasetSplits
    from ganbench.errors import UsageError
    from ganbench.evaluation import Evaluation, MetricValues
    from ganbench.harness.evaluate import EvaluateConfig, evaluate
    from ganbench.harness.runner import run
    from ganbench.harness.tune import TuneConfig, tune
    from ganbench.probes import ProbeContext, ProbeResult, ReferenceContext
    from ganbench.variant import GenerativeVariant, SuperResolutionVariant, Variant, VariantContext


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
