"""Provenance of a run: what config.json records besides the options themselves."""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

import ganbench
from ganbench.harness.rundir import RUN_FORMAT
from ganbench.specs import column_directions

if TYPE_CHECKING:  # pragma: no cover
    from ganbench.data.attributes import Attributes
    from ganbench.data import DatasetSplits
    from ganbench.evaluation.classifier import HeldOutClassifier
    from ganbench.evaluation.judges import Judges
    from ganbench.harness.runner import Plan
    from ganbench.registry import Registry


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, the CPU, and the thread counts: torch's, each BLAS's as threadpoolctl sees it,
    and the fixed count the metric arithmetic runs on (``metric_threads``)."""
    import torch_fidelity
    import torchvision

    from ganbench.evaluation.threads import thread_record

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    env = {
        "ganbench": ganbench.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_fidelity": torch_fidelity.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        **thread_record(),  # torch_threads, torch_interop_threads, blas, openmp, metric_threads
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def classifier_record(classifier: HeldOutClassifier) -> dict[str, Any]:
    """The held-out classifier a run is scored with; its weights' hash tells another apart."""
    return {
        "name": classifier.name,
        "path": str(classifier.path),
        "test_accuracy": classifier.test_accuracy,
        "fingerprint": classifier.fingerprint,
        "weights_sha256": classifier.weights_sha256,
    }


def attributes_record(attributes: Attributes | None) -> dict[str, Any] | None:
    if attributes is None:
        return None
    return {
        "names": list(attributes.names),
        "source": "pixels" if attributes.measured else "annotations",
        "thresholds": None if attributes.thresholds is None else attributes.thresholds.tolist(),
        "train_present": attributes.train.float().mean(0).tolist(),
    }


def with_step_flops(record: dict[str, Any], step_flops: Mapping[str, int | None]) -> dict[str, Any]:
    """``record`` with each variant's FLOPs per training step, ``variants.<name>.train_step_flops``
    (None where counting failed): what a FLOP budget divides, and what ``train_flops`` multiplies."""
    variants = {name: {**v, "train_step_flops": step_flops.get(name)} for name, v in record["variants"].items()}
    return {**record, "variants": variants}


def columns_record(plan: Plan, registry: Registry) -> dict[str, dict[str, str]]:
    """``{column: {"direction", "kind", "source", "plugin"}}`` for every column the run's metrics
    and probes fill: which way it is better (its spec's ``directions``; "neither" when it
    declares none), whether a ``metric`` or a ``probe`` fills it, which one, and from which
    plugin. The report reads its arrows, bold best and verdicts from here."""
    owners = [("metric", spec, registry.metrics[spec.name].plugin) for spec in plan.metrics]
    owners += [("probe", p.spec, p.plugin) for p in plan.probes]
    return {
        column: {"direction": direction, "kind": kind, "source": spec.name, "plugin": plugin}
        for kind, spec, plugin in owners
        for column, direction in column_directions(spec).items()
    }


def plugins_record(plan: Plan, dataset: str, registry: Registry) -> dict[str, dict[str, str] | None]:
    """``{plugin: source}`` for every plugin that provides something the run uses (its variants,
    dataset, metrics and probes): ``{"distribution", "version"}`` of an installed one, ``{"file",
    "sha256"}`` of a local file; None where the registry does not know (specs added by hand)."""
    used = [
        *(p.plugin for p in plan.variants),
        registry.datasets[dataset].plugin,
        *(registry.metrics[m.name].plugin for m in plan.metrics),
        *(p.plugin for p in plan.probes),
    ]
    return {name: registry.sources.get(name) for name in dict.fromkeys(used)}


def config_record(
    plan: Plan,
    splits: DatasetSplits,
    classifier: HeldOutClassifier,
    registry: Registry,
    attributes: Attributes | None = None,
    judges: Judges | None = None,
) -> dict[str, Any]:
    """config.json: the run's options (accepted back by ``--config``) and what they resolved to."""
    return {
        "format": RUN_FORMAT,
        "run": plan.config.to_json(),
        "variants": {
            p.spec.name: {
                "plugin": p.plugin,
                "task": p.spec.task,
                "conditional": p.spec.conditional,
                "reference": p.spec.reference,
                "config": dataclasses.asdict(p.config),
            }
            for p in plan.variants
        },
        "dataset": {
            "name": splits.name,
            "plugin": registry.datasets[splits.name].plugin,
            "source": splits.source,
            "image_shape": list(splits.image_shape),
            "class_names": list(splits.class_names),
            "train_size": int(splits.train_images.shape[0]),
            "test_size": int(splits.test_images.shape[0]),
        },
        "classifier": classifier_record(classifier),
        "dinov2": None if plan.dinov2 is None else plan.dinov2.record(),
        "attributes": attributes_record(attributes),
        "judges": None if judges is None else judges.record,
        "probes": {
            p.spec.name: {
                "plugin": p.plugin,
                "columns": list(p.spec.columns),
                "tables": list(p.spec.tables),
                "description": p.spec.description,
                "config": dataclasses.asdict(p.config),
            }
            for p in plan.probes
        },
        "metrics": {
            m.name: {
                "plugin": registry.metrics[m.name].plugin,
                "columns": list(m.columns),
                "description": m.description,
                "config": dataclasses.asdict(plan.metric_options[m.name]),
            }
            for m in plan.metrics
        },
        "columns": columns_record(plan, registry),
        "plugins": plugins_record(plan, splits.name, registry),
        "plugin_errors": [str(e) for e in registry.errors],
        "environment": environment(plan.device),
        "command": sys.argv if sys.argv and sys.argv[0].endswith("ganbench") else None,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }
