"""Run configuration: one typed dataclass whose field names are the CLI flags (with ``-`` for
``_``), the keys of a TOML config file and the keyword arguments of :func:`ganbench.run`."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.budget import Budget
from ganbench.errors import UsageError, describe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CACHE_ENV = "GANBENCH_CACHE"
# About one idle CPU-minute of cgan (11.00 GFLOP a step: 728 steps), and the same on every machine.
DEFAULT_BUDGET = "8TFLOP"
MIN_EVAL_SAMPLES = 50
EXECUTORS = ("local", "ray")
PRECISIONS = ("fp32", "bf16")  # --precision: autocast dtype of training (ganbench.fastpath)
TRACKERS = ("tensorboard", "mlflow")  # --track: live curves (ganbench.harness.tracking)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a ``ganbench run``.

    Attributes:
        variants: variant names, in the order they run.
        dataset: dataset name.
        budget: per (variant, seed) run: ``90s``, ``2m``, ``2000steps``, ``60kimg`` or ``2PFLOP``.
        seeds: one run per variant and seed.
        out: run directory; default ``results/<timestamp>-<variants>-<dataset>``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        eval_samples: samples generated per evaluation (balanced over classes when conditional).
        evals: evaluation points spread over the budget; the last one is at its end.
        plugin: local plugin files to load, in addition to installed ones.
        set: overrides of variant hyperparameters and probe options, ``{name: {field: value}}``.
        search: search ranges of variant hyperparameters, ``{variant: {field: RANGE text}}``
            (``log(1e-5,1e-2)``, ``uniform(0,1)``, ``int(1,5)``, ``choice(a,b)``), each
            narrowing, widening or adding to the variant's declared search space; validated
            against the variant when the run is planned and recorded.
        data_dir: a directory holding the dataset's IDX files.
        download: allow torchvision's download when no local copy is found.
        image_size: the side of the square images a dataset that resizes makes (``folder``,
            ``cifar10``); None: its default (a folder's most common size, CIFAR-10's 32).
        inception_weights: torch-fidelity's Inception weights file, for ``fid_inception``.
        dinov2_weights: a DINOv2 ViT/14 weights file, for ``fd_dinov2`` (never downloaded:
            without it, ``fd_dinov2`` is NaN); checked when the run is planned, its SHA-256
            recorded in config.json (``ganbench.evaluation.dinov2`` says which files).
        metrics: metric names to compute; empty means every metric for the variant's task.
        cache_dir: the classifier, data downloads and torch-fidelity's feature caches.
        checkpoints: save each run's full state after every evaluation.
        log_every: training steps between reading losses back from the device.
        probes: probe names to run at the final evaluation; None (the default) runs every
            probe that applies to a variant, an empty tuple none (``--no-probes``).
        executor: ``local`` runs the jobs one after another in this process; ``ray`` runs each
            job as a Ray task (``pip install 'ganbench[ray]'``).
        gpus_per_job: GPUs Ray reserves for each job; None means 1 on a CUDA device, else 0.
        cpus_per_job: CPUs Ray reserves for each job (its torch thread count, at least 1).
        ray_address: the Ray cluster to join (``auto``, ``ray://host:10001``); None starts a
            local Ray instance for the run.
        precision: ``fp32`` (the default) or ``bf16``: torch.autocast to bfloat16 around the
            networks' forward passes and losses in training (weights stay fp32; evaluation
            generates in fp32).
        compile: torch.compile the variant's networks (``--compile``).
        resample: at each generative job's final evaluation, score the final generator a
            second time on latents from an independent sampling seed (``sampling.csv``: how
            much of a metric's spread is sampling noise rather than training-seed noise).
        holdout: 0 (the default) scores against the test split; N > 0 holds N training
            images out of training (a fixed random subset) and scores against them instead:
            what ``ganbench tune`` selects on, so that choosing never reads the test split.
        track: live tracking while it trains, ``tensorboard`` and/or ``mlflow``
            (:mod:`ganbench.harness.tracking`); empty (the default) tracks nothing.
        track_uri: MLflow's tracking URI; None means a local store in the run directory
            (``sqlite:///RUN_DIR/mlruns.db``).
    """

    variants: tuple[str, ...] = ()
    dataset: str = "fashion-mnist"
    budget: Budget = field(default_factory=lambda: Budget.parse(DEFAULT_BUDGET))
    seeds: tuple[int, ...] = (0,)
    out: Path | None = None
    device: str = "auto"
    eval_samples: int = 10000
    evals: int = 3
    plugin: tuple[Path, ...] = ()
    set: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    search: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    data_dir: Path | None = None
    download: bool = True
    image_size: int | None = None
    inception_weights: Path | None = None
    dinov2_weights: Path | None = None
    metrics: tuple[str, ...] = ()
    cache_dir: Path | None = None
    checkpoints: bool = True
    log_every: int = 50
    probes: tuple[str, ...] | None = None
    executor: str = "local"
    gpus_per_job: float | None = None
    cpus_per_job: float = 1.0
    ray_address: str | None = None
    precision: str = "fp32"
    compile: bool = False
    # Off by default: it costs about one more evaluation, measured at 27% of a default cgan job's
    # evaluation time (evaluations and probes), over the 20% a default may add.
    resample: bool = False
    holdout: int = 0
    track: tuple[str, ...] = ()
    track_uri: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "arguments") -> RunConfig:
        """Build from loosely typed values (CLI strings, TOML or JSON values); raise
        UsageError naming the key, what is wrong and what is accepted."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for raw_key, value in values.items():
            key = raw_key.replace("-", "_")
            if key not in names:
                raise UsageError(f"unknown key {raw_key!r} in {source}; accepted: {', '.join(sorted(names))}")
            if value is None:
                continue
            try:
                kwargs[key] = _PARSERS[key](value)
            except UsageError:
                raise
            except (TypeError, ValueError) as exc:
                raise UsageError(f"{key} in {source}: {exc}") from None
        config = cls(**kwargs)
        config.check()
        return config

    def check(self) -> None:
        if self.eval_samples < MIN_EVAL_SAMPLES:
            raise UsageError(f"eval_samples must be at least {MIN_EVAL_SAMPLES}, got {self.eval_samples}")
        if self.holdout < 0:
            raise UsageError(f"holdout must be 0 (score on the test split) or a number of training images, got {self.holdout}")
        if self.image_size is not None and (self.image_size < 8 or self.image_size % 4):
            raise UsageError(
                f"image_size must be a multiple of 4 (what the DCGAN networks need), at least 8, got {self.image_size}"
            )
        if self.evals < 1:
            raise UsageError(f"evals must be at least 1, got {self.evals}")
        if self.log_every < 1:
            raise UsageError(f"log_every must be at least 1, got {self.log_every}")
        if not self.seeds:
            raise UsageError("seeds must name at least one seed, e.g. 0 or 0,1,2")
        if self.inception_weights is not None and not Path(self.inception_weights).is_file():
            raise UsageError(f"inception_weights {self.inception_weights} is not a file")
        if self.dinov2_weights is not None and not Path(self.dinov2_weights).is_file():
            raise UsageError(
                f"dinov2_weights {self.dinov2_weights} is not a file; "
                "accepted: a DINOv2 ViT/14 weights file (.pth or .safetensors)"
            )
        for path in self.plugin:
            if not Path(path).is_file():
                raise UsageError(f"plugin file {path} does not exist")
        if self.executor not in EXECUTORS:
            raise UsageError(f"executor {self.executor!r} is unknown; accepted: {', '.join(EXECUTORS)}")
        if self.gpus_per_job is not None and not self.gpus_per_job >= 0:
            raise UsageError(f"gpus_per_job must be a number >= 0, got {self.gpus_per_job}")
        if not self.cpus_per_job > 0:
            raise UsageError(f"cpus_per_job must be a number > 0, got {self.cpus_per_job}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"precision {self.precision!r} is not supported; accepted: {', '.join(PRECISIONS)}")
        unknown = [t for t in self.track if t not in TRACKERS]
        if unknown:
            raise UsageError(f"track {', '.join(unknown)} is unknown; accepted: {', '.join(TRACKERS)} (or both)")

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, and accepted back by :meth:`from_mapping`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Budget):
                value = value.text
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = [str(v) if isinstance(v, Path) else v for v in value]
            elif isinstance(value, Mapping):
                value = {k: dict(v) for k, v in value.items()}
            out[f.name] = value
        return out


def _once(values: list[Any], what: str) -> None:
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} given more than once; name each {what} once")


def _names(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [str(v).strip() for v in items if str(v).strip()]
    _once(out, "one")
    return tuple(out)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        value = [value]
    seeds: list[int] = []
    for item in value.split(",") if isinstance(value, str) else value:
        text = str(item).strip()
        try:
            if "-" in text[1:]:
                lo, hi = (int(t) for t in text.split("-", 1))
                if lo > hi:
                    raise UsageError(f"seeds: range {text!r} is reversed; write it low-high, e.g. {hi}-{lo}")
                seeds.extend(range(lo, hi + 1))
            elif text:
                seeds.append(int(text))
        except ValueError:
            raise UsageError(
                f"seeds: {text!r} is not a seed; accepted: integers and ranges, e.g. 0,1,2 or 0-4"
            ) from None
    if any(s < 0 for s in seeds):
        raise UsageError("seeds must be non-negative integers")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UsageError(f"seeds: {', '.join(map(str, repeated))} given more than once; name each seed once")
    return tuple(seeds)


def format_seeds(seeds: Any) -> str:
    """Seeds as ``--seeds`` takes them, runs of consecutive seeds as ranges: ``0-4,7``."""
    parts: list[str] = []
    items = list(seeds)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        parts.append(str(items[i]) if j == i else f"{items[i]}-{items[j]}" if j > i + 1 else f"{items[i]},{items[j]}")
        i = j + 1
    return ",".join(parts)


def _int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _optional_str(value: Any) -> str | None:
    text = str(value).strip()
    return None if text.lower() in ("", "none") else text


def _precision(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in PRECISIONS:
        raise UsageError(f"precision {value!r} is not supported; accepted: {', '.join(PRECISIONS)}")
    return text


def _path(value: Any) -> Path:
    return Path(os.path.expanduser(str(value)))


def _budget(value: Any) -> Budget:
    return value if isinstance(value, Budget) else Budget.parse(str(value))


def parse_set(value: Any) -> dict[str, dict[str, Any]]:
    """``["cgan.lr_g=1e-4", ...]`` or ``{"cgan": {"lr_g": 1e-4}}`` -> ``{variant: {key: value}}``.

    Values stay as given (strings from the command line); :func:`variant_config` types them
    against the variant's config dataclass.
    """
    out: dict[str, dict[str, Any]] = {}
    if isinstance(value, Mapping):
        for variant, table in value.items():
            if not isinstance(table, Mapping):
                raise UsageError(f"set.{variant} must be a table of KEY = VALUE")
            out.setdefault(str(variant), {}).update(table)
        return out
    for item in [value] if isinstance(value, str) else value:
        target, sep, raw = str(item).partition("=")
        variant, dot, key = target.strip().partition(".")
        if not (sep and dot and variant and key.strip()):
            raise UsageError(f"--set {item!r} is not understood; accepted: VARIANT.KEY=VALUE, e.g. cgan.lr_g=1e-4")
        out.setdefault(variant, {})[key.strip()] = raw.strip()
    return out


def parse_search(value: Any) -> dict[str, dict[str, str]]:
    """``["dcgan.lr_g=log(1e-5,1e-2)", ...]`` or ``{"dcgan": {"lr_g": "log(1e-5,1e-2)"}}`` (a
    :class:`ganbench.hparams.Range` is taken too) -> ``{variant: {key: range text}}``.

    Each range is parsed here (an empty, inverted or malformed range is refused at once) and
    kept as text; :func:`search_range` types it against the variant's config dataclass."""
    from ganbench.hparams import Range, parse_range

    pairs: list[tuple[str, str, Any, str]] = []
    if isinstance(value, Mapping):
        for variant, table in value.items():
            if not isinstance(table, Mapping):
                raise UsageError(f"search.{variant} must be a table of KEY = \"RANGE\", e.g. lr_g = \"log(1e-5,1e-2)\"")
            pairs += [(str(variant), str(key), raw, f"search.{variant}.{key}") for key, raw in table.items()]
    else:
        for item in [value] if isinstance(value, str) else value:
            target, sep, raw = str(item).partition("=")
            variant, dot, key = target.strip().partition(".")
            if not (sep and dot and variant and key.strip()):
                raise UsageError(
                    f"--search {item!r} is not understood; accepted: VARIANT.KEY=RANGE, e.g. dcgan.lr_g=log(1e-5,1e-2)"
                )
            pairs.append((variant.strip(), key.strip(), raw, f"--search {variant.strip()}.{key.strip()}"))
    out: dict[str, dict[str, str]] = {}
    for variant, key, raw, where in pairs:
        if isinstance(raw, Range):
            text = raw.text
        elif isinstance(raw, str):
            try:  # choice values stay text here: typed against the field when the run is planned
                text = parse_range(raw, value=str).text
            except ValueError as exc:
                raise UsageError(f"{where}={raw.strip()}: {exc}") from None
        else:
            raise UsageError(f"{where} must be a RANGE string, e.g. \"log(1e-5,1e-2)\"; got {raw!r}")
        out.setdefault(variant, {})[key] = text
    return out


_PARSERS = {
    "variants": _names,
    "dataset": lambda v: str(v).strip(),
    "budget": _budget,
    "seeds": _seeds,
    "out": _path,
    "device": lambda v: str(v).strip(),
    "eval_samples": _int,
    "evals": _int,
    "plugin": lambda v: tuple(_path(p) for p in ([v] if isinstance(v, (str, Path)) else v)),
    "set": parse_set,
    "search": parse_search,
    "data_dir": _path,
    "download": _bool,
    "image_size": _int,
    "inception_weights": _path,
    "dinov2_weights": _path,
    "metrics": _names,
    "cache_dir": _path,
    "checkpoints": _bool,
    "log_every": _int,
    "probes": _names,
    "executor": lambda v: str(v).strip().lower(),
    "gpus_per_job": _float,
    "cpus_per_job": _float,
    "ray_address": _optional_str,
    "precision": _precision,
    "compile": _bool,
    "resample": _bool,
    "holdout": _int,
    "track": lambda v: tuple(t.lower() for t in _names(v)),
    "track_uri": _optional_str,
}


def load_config_file(path: Path) -> dict[str, Any]:
    """Keys of a TOML config file, or of the ``run`` section of a run's config.json. A run's
    ``out`` is left out: a run re-made from its config.json goes to a new directory
    (``--resume RUN_DIR`` continues the old one)."""
    path = Path(path)
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        text = path.read_text()
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} cannot be read ({describe(exc)})") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid {kind}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("run"), dict):
        data = {k: v for k, v in data["run"].items() if k != "out"}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of keys")
    return data


# Options that say where things are, not what is computed: a resumed run may change them.
# How jobs are executed (executor, resources, cluster) does not change what they compute either.
# Weights files are checked by content instead: Inception's by its pinned hash, DINOv2's against
# the SHA-256 the run recorded (ganbench.harness.runner refuses another file). Tracking only watches.
RESUME_MAY_CHANGE = (
    *("out", "cache_dir", "data_dir", "download", "inception_weights", "dinov2_weights", "checkpoints"),
    *("executor", "gpus_per_job", "cpus_per_job", "ray_address", "track", "track_uri"),
)


def differences(before: RunConfig, now: RunConfig) -> list[str]:
    """``key: before -> now`` for every option that changes what a run computes. ``set`` is
    left to the caller, who compares the typed hyperparameters (``1e-4`` equals ``0.0001``)."""
    a, b = before.to_json(), now.to_json()
    skip = (*RESUME_MAY_CHANGE, "set")
    return [f"{k}: {a[k]} -> {b[k]}" for k in a if k not in skip and a[k] != b[k]]


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        return _bool(value)
    if tp is int:
        return _int(value)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        return str(value)
    if origin is tuple:
        args = typing.get_args(tp)
        items = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
        item_type = args[0] if args else str
        return tuple(_coerce(item_type, v) for v in items)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value in (None, "none", "None") and len(args) < len(typing.get_args(tp)):
            return None
        return _coerce(args[0], value)
    return value


def variant_config(variant: str, config_type: type, overrides: Mapping[str, Any]) -> Any:
    """The variant's config dataclass with ``overrides`` typed, checked against the valid values
    its fields declare (:mod:`ganbench.hparams`) and applied."""
    from ganbench.hparams import valid_values

    hints = typing.get_type_hints(config_type)
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    valid = valid_values(config_type)
    typed: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise UsageError(
                f"--set {variant}.{key}: {variant} has no setting {key!r}; accepted: {', '.join(sorted(fields)) or 'none'}"
            )
        try:
            typed[key] = _coerce(hints.get(key, Any), value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--set {variant}.{key}={value}: {exc}") from None
        if key in valid and not valid[key].accepts(typed[key]):
            raise UsageError(f"--set {variant}.{key}={value}: {key} must be {valid[key].text}")
    try:
        return config_type(**typed)
    except (TypeError, ValueError) as exc:  # __post_init__ validation of the config itself
        raise UsageError(f"--set {variant}: {exc}") from None


def search_range(variant: str, config_type: type, key: str, text: str) -> Any:
    """The :class:`ganbench.hparams.Range` that ``--search VARIANT.KEY=RANGE`` gives field
    ``key`` of the variant's config dataclass, choice values typed as the field is; UsageError
    when the field does not exist, the range is of another type or reaches invalid values."""
    from ganbench.hparams import check_range, parse_range

    fields = [f.name for f in dataclasses.fields(config_type)]
    if key not in fields:
        raise UsageError(
            f"--search {variant}.{key}: {variant} has no setting {key!r}; accepted: {', '.join(sorted(fields)) or 'none'}"
        )
    tp = typing.get_type_hints(config_type).get(key, Any)

    def typed(token: str) -> Any:
        try:
            return _coerce(tp, token)
        except (TypeError, ValueError):
            name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
            raise ValueError(f"{key} is a {name} field, and choice value {token!r} is not one") from None

    try:
        search = parse_range(text, value=typed)
        check_range(config_type, key, search)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--search {variant}.{key}={text}: {exc}") from None
    return search


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganbench"
