"""A feature cache that can be trusted: what does not change between evaluations (a reference
split's features and FID statistics), under ``<cache_dir>/features/``.

A file holds named tensors with the identity of what they were computed from (extractor,
weights, images) and a SHA-256 of their content. It is written with
:func:`~ganbench.harness.rundir.atomic_write` and read with ``torch.load(weights_only=True)``,
so a crafted pickle is refused, never run. A file that cannot be read, fails its checksum or
was made for other inputs is rebuilt, with one warning line.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from ganbench.files import atomic_write, build_lock

log = logging.getLogger(__name__)

FORMAT = "ganbench-feature-cache"
VERSION = 1
FOLDER = "features"

Tensors = dict[str, torch.Tensor]
Identity = Mapping[str, str | int]


class CacheMismatch(ValueError):
    """A readable file that is not the cache asked for."""


def cache_path(cache_dir: Path | str, name: str) -> Path:
    return Path(cache_dir) / FOLDER / f"{name}.pt"


def digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors: names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def short_reason(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line. PyTorch's weights-only refusal is paragraphs long (with
    terminal escapes); its cause is the sentence after "WeightsUnpickler error:"."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    text = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    cause = line.split(". ", 1)[0].rstrip(".")
    if len(cause) > limit:
        cause = cause[: limit - 3] + "..."
    return f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__


def safe_load(path: Path | str) -> object:
    """``torch.load(weights_only=True)``: tensors and plain containers only; any other pickle
    raises instead of running."""
    with warnings.catch_warnings():  # a foreign pickle's protocol: it is refused anyway
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True)


def read(path: Path, identity: Identity) -> Tensors:
    """The tensors of a cache file made for ``identity``; raises if it is anything else."""
    data = safe_load(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise CacheMismatch(f"not a {FORMAT} v{VERSION} file")
    tensors = data.get("tensors")
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise CacheMismatch("no tensors")
    if digest(tensors) != data.get("checksum"):
        raise CacheMismatch("its content fails its checksum")
    stored = data.get("identity")
    if stored != dict(identity):
        stored = stored if isinstance(stored, dict) else {}
        keys = sorted(k for k in {*stored, *identity} if stored.get(k) != identity.get(k))
        raise CacheMismatch(f"made for other inputs ({', '.join(keys)} differ)")
    return tensors


def write(path: Path, identity: Identity, tensors: Mapping[str, torch.Tensor]) -> None:
    # clone(): a view would save its whole underlying storage
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    data = {"format": FORMAT, "version": VERSION, "identity": dict(identity), "checksum": digest(tensors)}
    atomic_write(path, lambda tmp: torch.save({**data, "tensors": tensors}, tmp))


def load_or_build(path: Path, identity: Identity, build: Callable[[], Tensors]) -> Tensors:
    """The cached tensors at ``path`` if they were made for ``identity``; otherwise ``build()``
    them and cache them (a cache that cannot be written only costs the next evaluation time).
    Two processes sharing the cache build a missing file once: the second waits for the first."""
    with build_lock(path):
        return _load_or_build(path, identity, build)


def _load_or_build(path: Path, identity: Identity, build: Callable[[], Tensors]) -> Tensors:
    if path.exists():
        try:
            return read(path, identity)
        except CacheMismatch as exc:
            log.warning("feature cache %s is unusable (%s); rebuilding it", path, exc)
        except Exception as exc:
            log.warning("feature cache %s is unreadable (%s); rebuilding it", path, short_reason(exc))
    tensors = build()
    try:
        write(path, identity, tensors)
    except OSError as exc:
        log.warning("feature cache %s cannot be written (%s); going on without it", path, short_reason(exc))
    return tensors
