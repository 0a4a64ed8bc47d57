"""Plugin discovery and the registry of variants, datasets and metrics.

Plugins come from three places, in this order: the ``ganbench`` entry-point group (built-ins
first, then installed distributions by name), the files in ``$GANBENCH_PLUGINS`` and the files
given with ``--plugin``. Nothing here runs at import time: the plugin manager is created on
first use. A plugin that fails to import, implements an unknown hook or registers something
invalid is recorded as a :class:`PluginError` under its name; every other plugin still loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

import pluggy

from ganbench import hookspecs
from ganbench.errors import UsageError
from ganbench.specs import DatasetSpec, MetricSpec, ProbeSpec, VariantSpec, spec_problem

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ganbench"
PLUGINS_ENV = "GANBENCH_PLUGINS"
BUILTIN_DISTRIBUTION = "ganbench"

T = TypeVar("T")


@dataclass(frozen=True)
class PluginError:
    """A plugin that could not be loaded, or one of its registrations that was refused."""

    plugin: str
    message: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r}: {self.message}"


@dataclass(frozen=True)
class Registered(Generic[T]):
    spec: T
    plugin: str


@dataclass(frozen=True)
class Kind:
    """One kind of thing plugins register: its spec type, its hook and its table. A new kind
    is one entry in :data:`KINDS` (and its hook in hookspecs.py)."""

    name: str
    spec: type
    hook: str
    table: str
    fills_columns: bool = False  # its specs own metrics.csv columns (one owner per column)


KINDS = (
    Kind("dataset", DatasetSpec, "ganbench_register_datasets", "datasets"),
    Kind("metric", MetricSpec, "ganbench_register_metrics", "metrics", fills_columns=True),
    Kind("probe", ProbeSpec, "ganbench_register_probes", "probes", fills_columns=True),
    Kind("variant", VariantSpec, "ganbench_register_variants", "variants"),
)
KIND = {k.name: k for k in KINDS}


@dataclass
class Registry:
    """Everything the loaded plugins registered, with the plugin that registered each."""

    variants: dict[str, Registered[VariantSpec]] = field(default_factory=dict)
    datasets: dict[str, Registered[DatasetSpec]] = field(default_factory=dict)
    metrics: dict[str, Registered[MetricSpec]] = field(default_factory=dict)
    probes: dict[str, Registered[ProbeSpec]] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    # plugin -> where its code came from: {"distribution", "version"} for an installed one,
    # {"file", "sha256"} for a local file (its contents when it was loaded); what config.json
    # records so that a run says which code computed it.
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def variant(self, name: str) -> VariantSpec:
        return self._lookup("variant", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self._lookup("dataset", name)

    def metric(self, name: str) -> MetricSpec:
        return self._lookup("metric", name)

    def probe(self, name: str) -> ProbeSpec:
        return self._lookup("probe", name)

    def _lookup(self, kind: str, name: str) -> Any:
        table: dict[str, Registered[Any]] = getattr(self, KIND[kind].table)
        if name in table:
            return table[name].spec
        accepted = ", ".join(sorted(table)) or "none registered"
        broken = f" (plugins that failed: {', '.join(sorted({e.plugin for e in self.errors}))})" if self.errors else ""
        raise UsageError(f"unknown {kind} {name!r}; accepted: {accepted}{broken}")

    def add(self, kind: str, plugin: str, spec: Any) -> None:
        """The ``register`` callback handed to plugins (bound to ``kind`` and ``plugin``)."""
        k = KIND[kind]
        table: dict[str, Registered[Any]] = getattr(self, k.table)
        problem = spec_problem(spec, k.spec)
        if problem:
            self.errors.append(PluginError(plugin, f"refused {kind} registration: {problem}"))
            return
        if spec.name in table:
            first = table[spec.name].plugin
            self.errors.append(
                PluginError(
                    plugin,
                    f"{kind} {spec.name!r} is already registered by plugin {first!r}; kept the one from {first!r}",
                )
            )
            return
        if k.fills_columns:
            owners = {
                c: (other.name, r)
                for other in KINDS
                if other.fills_columns
                for r in getattr(self, other.table).values()
                for c in r.spec.columns
            }
            taken = [c for c in spec.columns if c in owners]
            if taken:
                owner_kind, owner = owners[taken[0]]
                self.errors.append(
                    PluginError(
                        plugin,
                        f"{kind} {spec.name!r} fills column {taken[0]!r}, already filled by {owner_kind} "
                        f"{owner.spec.name!r} of plugin {owner.plugin!r}; kept the one from {owner.plugin!r}",
                    )
                )
                return
        if isinstance(spec, ProbeSpec):
            owners = {t: r for r in self.probes.values() for t in r.spec.tables}
            taken = [t for t in spec.tables if t in owners]
            if taken:
                owner = owners[taken[0]]
                self.errors.append(
                    PluginError(
                        plugin,
                        f"probe {spec.name!r} writes table {taken[0]!r}, already written by probe "
                        f"{owner.spec.name!r} of plugin {owner.plugin!r}; kept the one from {owner.plugin!r}",
                    )
                )
                return
        table[spec.name] = Registered(spec, plugin)


def create_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        found.append(ep)
    dist = lambda ep: ep.dist.name if ep.dist is not None else ""  # noqa: E731
    return sorted(found, key=lambda ep: (dist(ep) != BUILTIN_DISTRIBUTION, dist(ep), ep.name))


def env_plugin_files(environ: dict[str, str] | None = None) -> list[Path]:
    value = (os.environ if environ is None else environ).get(PLUGINS_ENV, "")
    return [Path(p) for p in value.split(os.pathsep) if p.strip()]


def import_plugin_file(path: Path) -> ModuleType:
    """Import a local plugin file as a uniquely named module."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such plugin file: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"ganbench_local_plugins.{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _register_plugin(pm: pluggy.PluginManager, plugin: object, name: str, errors: list[PluginError]) -> None:
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy's validation: a hookimpl whose arguments do not match its spec
        errors.append(PluginError(name, f"not registered: {exc}"))
        return
    unmarked, unknown = [], []
    for attr in dir(plugin):
        if attr.startswith("ganbench_") and callable(getattr(plugin, attr, None)):
            if getattr(getattr(plugin, attr), f"{hookspecs.PROJECT_NAME}_impl", None) is None:
                unmarked.append(attr)  # pluggy ignores it: most likely a forgotten decorator
            elif not hasattr(hookspecs, attr):
                unknown.append(attr)  # most likely a misspelt hook
    if unknown:
        errors.append(
            PluginError(
                name, f"implements unknown hook(s) {', '.join(unknown)}; known hooks: {', '.join(hook_names())}"
            )
        )
    if unmarked:
        errors.append(PluginError(name, f"{', '.join(unmarked)} not marked with @ganbench.hookimpl; ignored"))


def hook_names() -> list[str]:
    """Every hook a plugin may implement, in the order hookspecs.py defines them."""
    return [name for name in vars(hookspecs) if name.startswith("ganbench_")]


def file_source(path: Path) -> dict[str, str]:
    """A local plugin file as config.json records it: its absolute path and its contents' SHA-256."""
    path = Path(path).expanduser().resolve()
    return {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def load_plugins(
    plugin_files: Iterable[Path | str] = (),
    *,
    entry_points: bool = True,
    environ: dict[str, str] | None = None,
) -> tuple[pluggy.PluginManager, list[PluginError], dict[str, dict[str, str]]]:
    """A plugin manager with every plugin registered, the errors met on the way, and where each
    registered plugin came from (:attr:`Registry.sources`)."""
    pm = create_plugin_manager()
    errors: list[PluginError] = []
    sources: dict[str, dict[str, str]] = {}
    if entry_points:
        for ep in _entry_points():
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                errors.append(PluginError(ep.name, f"a plugin named {ep.name!r} is already loaded; skipped {ep.value}"))
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                errors.append(PluginError(ep.name, f"failed to load {ep.value}: {type(exc).__name__}: {exc}"))
                continue
            _register_plugin(pm, plugin, ep.name, errors)
            if ep.dist is not None:
                sources[ep.name] = {"distribution": ep.dist.name, "version": ep.dist.version}
    for path in [*env_plugin_files(environ), *map(Path, plugin_files)]:
        name = str(path)
        if pm.get_plugin(name) is not None:
            continue  # the same file given twice
        try:
            source = file_source(path) if Path(path).expanduser().is_file() else {}
            module = import_plugin_file(path)
        except Exception as exc:
            errors.append(PluginError(name, f"failed to load: {type(exc).__name__}: {exc}"))
            continue
        _register_plugin(pm, module, name, errors)
        sources[name] = source
    return pm, errors, sources


def collect(
    pm: pluggy.PluginManager,
    errors: Iterable[PluginError] = (),
    sources: dict[str, dict[str, str]] | None = None,
) -> Registry:
    """Call every registration hook, one plugin at a time, and return what was registered."""
    names = [name for name, _ in pm.list_name_plugin()]
    registry = Registry(
        errors=list(errors), plugins=names, sources={n: s for n, s in (sources or {}).items() if n in names and s}
    )
    for kind in KINDS:
        hook = getattr(pm.hook, kind.hook)
        for impl in hook.get_hookimpls():

            def register(spec: Any, _kind: str = kind.name, _plugin: str = impl.plugin_name) -> None:
                registry.add(_kind, _plugin, spec)

            kwargs = {"register": register} if "register" in impl.argnames else {}
            try:
                impl.function(**kwargs)
            except Exception as exc:
                registry.errors.append(PluginError(impl.plugin_name, f"{hook.name} raised {type(exc).__name__}: {exc}"))
    return registry


def load_registry(
    plugin_files: Iterable[Path | str] = (),
    *,
    entry_points: bool = True,
    environ: dict[str, str] | None = None,
) -> Registry:
    """Load every plugin and collect its registrations; log each plugin error once."""
    pm, errors, sources = load_plugins(plugin_files, entry_points=entry_points, environ=environ)
    registry = collect(pm, errors, sources)
    for error in registry.errors:
        log.warning("%s", error)
    if entry_points and not registry.variants and not registry.errors:
        log.warning(
            "no variants are registered: is ganbench installed (pip install -e .)? "
            "Built-in variants are found through the %r entry-point group.",
            ENTRY_POINT_GROUP,
        )
    return registry
