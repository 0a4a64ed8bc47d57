"""The contract between ganbench and its plugins: every hook a plugin may implement.

Every hook is named ``ganbench_*``. Implement one in a module (or class) with the
``@ganbench.hookimpl`` decorator and make the module known through the ``ganbench``
entry-point group, ``--plugin FILE`` or ``GANBENCH_PLUGINS``. docs/plugins.md documents
each hook with an example; tests/test_hookspecs.py keeps the two in step.

Registration hooks hand the plugin a ``register`` callback and take frozen spec dataclasses
(never dicts). The host validates each spec: names are lowercase and unique, types are right,
and a conflict names both plugins. A plugin whose hook raises is reported by name; the specs
of every other plugin are still registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.specs import DatasetSpec, MetricSpec, ProbeSpec, VariantSpec

PROJECT_NAME = "ganbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def ganbench_register_variants(register: Callable[[VariantSpec], None]) -> None:
    """Register GAN variants.

    :param register: call ``register(VariantSpec(...))`` once per variant. The spec names the
        variant, the callable that builds it (a :class:`ganbench.Variant` subclass, usually),
        its hyperparameter dataclass (whose fields ``--set VARIANT.KEY=VALUE`` overrides), its
        task and whether it is conditional.
    :return: nothing; the return value is ignored.

    Not firstresult: every implementation is called, in plugin load order.
    """


@hookspec
def ganbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets that variants can be trained and evaluated on.

    :param register: call ``register(DatasetSpec(...))`` once per dataset. The spec's ``load``
        callable receives a :class:`ganbench.DataRequest` and returns
        :class:`ganbench.DatasetSplits` (uint8 images, int64 labels, train and test splits).
    :return: nothing; the return value is ignored.

    Not firstresult: every implementation is called, in plugin load order.
    """


@hookspec
def ganbench_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register metrics computed at every evaluation point.

    :param register: call ``register(MetricSpec(...))`` once per metric. The spec lists the
        table columns the metric fills (each column belongs to one metric only), the tasks it
        applies to, its options (a dataclass, overridden by ``--set METRIC.KEY=VALUE``) and a
        ``compute(evaluation)`` callable that receives a :class:`ganbench.Evaluation` (its
        options as ``evaluation.options``) and returns a mapping of column to float, or a
        :class:`ganbench.MetricValues` with per-class values and reasons for NaN.
    :return: nothing; the return value is ignored.

    Not firstresult: every implementation is called, in plugin load order.
    """


@hookspec
def ganbench_register_probes(register: Callable[[ProbeSpec], None]) -> None:
    """Register probes: analyses of a trained variant, run at its final evaluation.

    :param register: call ``register(ProbeSpec(...))`` once per probe. The spec lists the
        table columns the probe fills (each column belongs to one metric or probe only), the
        tasks (and, with ``applies``, the variants) it applies to, its options (a dataclass,
        overridden by ``--set PROBE.KEY=VALUE``) and a ``compute(probe)`` callable that
        receives a :class:`ganbench.ProbeContext` (the frozen variant, the data, the judge and
        steering classifiers, a seeded generator) and returns a mapping of column to float,
        or a :class:`ganbench.ProbeResult` with tables, pictures and reasons for NaN. An
        optional ``reference(ref)`` gets a :class:`ganbench.ReferenceContext` and returns the
        probe's value on real data, for the run's ``real-data`` row.
    :return: nothing; the return value is ignored.

    Not firstresult: every implementation is called, in plugin load order.
    """
