"""Session fixtures: the real Fashion-MNIST and the held-out classifier, built once.

The classifier is cached in pytest's cache directory (or $GANBENCH_TEST_CACHE), so a local
re-run reuses it; a clean CI checkout trains it once (about 1.5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import ganbench
from ganbench import columns as C
from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.evaluation.classifier import load_or_train
from ganbench.harness.rundir import RUN_FORMAT
from ganbench.registry import load_registry

FIXTURES = Path(__file__).parent / "fixtures"  # prefer the fixtures_dir fixture; kept for modules that import it
# The console script of the environment running the tests (its bin/ need not be on PATH).
_script = Path(sys.executable).with_name("ganbench")
GANBENCH = [str(_script)] if _script.is_file() else [sys.executable, "-m", "ganbench"]


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core), each worker gets its share
    of the cores: torch's threads, and OMP_NUM_THREADS for the ``ganbench`` subprocesses a test
    starts. Two workers on 2 threads each would oversubscribe 2 cores (OpenMP threads spin)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    elif getattr(config.option, "numprocesses", None) and not config.option.collectonly:
        _warm_caches(config)


def _test_cache_dir(config) -> Path:
    env = os.environ.get("GANBENCH_TEST_CACHE")
    return Path(env) if env else Path(config.cache.mkdir("ganbench"))


def _warm_caches(config) -> None:
    """The xdist controller, before any worker starts, trains the held-out classifier and the
    judges (what nearly every test needs) into the test cache, on every core. Left to the
    workers, one trains them on its one thread while the other waits on the cache's lock: on a
    clean 2-core checkout that idled a core for about three minutes. A cached copy is loaded, not
    trained again; without the data the fixtures say what is missing, so this stays quiet."""
    from ganbench.data.attributes import dataset_attributes
    from ganbench.evaluation.judges import load_or_train_judges

    cache_dir = _test_cache_dir(config)
    registry = load_registry()
    try:
        fashion = registry.dataset("fashion-mnist").load(DataRequest(None, download=False, cache_dir=cache_dir))
    except UsageError:
        return
    cpu = torch.device("cpu")
    classifier = load_or_train(fashion, cache_dir, cpu)
    load_or_train_judges(fashion, dataset_attributes(registry.dataset("fashion-mnist"), fashion), classifier, cache_dir, cpu)


def pytest_collection_modifyitems(config, items):
    """Tests that use Ray run on one xdist worker (``--dist loadgroup``): a second local Ray
    instance started beside the session's would join it (ray.init finds the latest cluster)."""
    for item in items:
        if item.path.name.startswith("test_ray") or "ray_instance" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def cache_dir(request) -> Path:
    return _test_cache_dir(request.config)


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def fashion(registry, cache_dir):
    try:
        return registry.dataset("fashion-mnist").load(DataRequest(None, download=False, cache_dir=cache_dir))
    except UsageError as exc:
        pytest.exit(f"the tests need the real Fashion-MNIST and never download it: {exc}", returncode=3)


@pytest.fixture(scope="session")
def classifier(fashion, cache_dir):
    return load_or_train(fashion, cache_dir, torch.device("cpu"))


@pytest.fixture
def run_kwargs(cache_dir, tmp_path):
    """Small, fast ``ganbench.run`` arguments on the real data."""
    return dict(
        dataset="fashion-mnist",
        budget="20steps",
        evals=2,
        eval_samples=200,
        seeds=(0,),
        device="cpu",
        cache_dir=cache_dir,
        download=False,
        out=tmp_path / "run",
        probes=(),  # tests of probes ask for them
    )


def _tree_digest(*roots: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(Path(root).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session")
def tree_digest():
    """``tree_digest(*folders)``: the sha256 of every file under them, by path, to show that
    nothing pre-existing changed."""
    return _tree_digest


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: the test plugins."""
    return FIXTURES


@pytest.fixture(scope="session")
def ganbench_command() -> list[str]:
    """The argv prefix that runs the installed ``ganbench`` command (for Popen and the like)."""
    return list(GANBENCH)


@pytest.fixture(scope="session")
def start_interruptible(ganbench_command):
    """Starts ``ganbench ARGS`` in the background as a terminal would, so that a test's SIGINT
    is a user's Ctrl-C: SIGINT back at its default in the child (a suite launched with ``&``
    from a script inherits it ignored, and Python then installs no KeyboardInterrupt)."""

    def start(*args) -> subprocess.Popen:
        return subprocess.Popen(
            [*ganbench_command, *map(str, args)],
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    return start


@pytest.fixture
def ganbench_cli():
    """Runs the installed ``ganbench`` console script in a subprocess, as a user does:
    ``ganbench_cli("list", "--plugin", path, env=None, cwd=None)`` returns the
    ``subprocess.CompletedProcess`` (text stdout and stderr captured; 600 s timeout)."""

    def run(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*GANBENCH, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
        )

    return run


# --- run directories for report tests ----------------------------------------------------------

SMALL_PROBES = {
    "steering": {"latents": 4}, "path-length": {"samples": 50}, "label-swap": {"latents": 5},
    "cas": {"samples": 200, "epochs": 1}, "memorisation": {"samples": 100},
}  # fmt: skip


@pytest.fixture(scope="session")
def real_run(tmp_path_factory, cache_dir):
    """dcgan and cgan, two seeds, two evaluations, every probe (small): a real run to report on."""
    out = tmp_path_factory.mktemp("report") / "run"
    ganbench.run(
        variants="dcgan,cgan", dataset="fashion-mnist", budget="20steps", evals=2, eval_samples=200, seeds="0,1",
        device="cpu", cache_dir=cache_dir, download=False, out=out, set=SMALL_PROBES,
    )  # fmt: skip
    return out


@pytest.fixture
def copy_run(tmp_path):
    """``copy_run(run_dir, name)``: a copy of a run directory to alter."""

    def copy(run_dir, name):
        target = tmp_path / name
        shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "report"))
        return target

    return copy


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (64, 64), value).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory):
    """``synthetic_run(variants, seeds, evals)``: a run directory written by hand, with every table
    a report reads, metrics drawn from a seeded generator (variant i has fid_domain ~ 10 + 5 i)."""

    def make(variants=7, seeds=5, evals=3, name="synthetic"):
        out = tmp_path_factory.mktemp(name)
        rng = np.random.default_rng(0)
        names = [f"v{i}" for i in range(variants)]
        rows, per_class, log, jobs = [], [], [], []
        rows.append(
            {
                C.VARIANT: C.REAL_DATA,
                C.DATASET: "fashion-mnist",
                C.SEED: -1,
                C.EVAL_INDEX: 0,
                C.STEP: 0,
                C.IMAGES_SEEN: 0,
                C.STATUS: C.STATUS_REFERENCE,
                C.FID_DOMAIN: 0.06,
                C.CLASS_CONSISTENCY: 0.96,
            }
        )
        for i, v in enumerate(names):
            for s in range(seeds):
                for e in range(1, evals + 1):
                    fid = (10 + 5 * i) * (evals + 1 - e) / evals + rng.normal(0, 0.5)
                    rows.append(
                        {
                            C.VARIANT: v,
                            C.DATASET: "fashion-mnist",
                            C.SEED: s,
                            C.EVAL_INDEX: e,
                            C.STEP: 100 * e,
                            C.IMAGES_SEEN: 6400 * e,
                            C.TRAIN_SECONDS: 10.0 * e,
                            C.CRITIC_STEPS: 1,
                            C.STATUS: C.STATUS_OK,
                            C.FID_DOMAIN: fid,
                            C.KID_DOMAIN: fid / 100,
                            C.CLASS_CONSISTENCY: 0.9 - 0.05 * i + rng.normal(0, 0.01),
                            C.CLASS_COVERAGE: 0.95,
                            C.TRAIN_IMG_PER_S: 500 + 10 * i + rng.normal(0, 5),
                            C.GEN_IMG_PER_S: 5000.0,
                            C.PEAK_MEM_MB: 900.0,
                            C.EVAL_SECONDS: 5.0,
                            C.NOTE: "",
                        }
                    )
                    per_class += [
                        {
                            C.VARIANT: v,
                            C.DATASET: "fashion-mnist",
                            C.SEED: s,
                            C.EVAL_INDEX: e,
                            C.STEP: 100 * e,
                            C.CLASS_INDEX: k,
                            C.CLASS_NAME: f"c{k}",
                            C.CLASS_CONSISTENCY: rng.uniform(),
                        }
                        for k in range(10)
                    ]
                for step in range(10, 100 * evals + 1, 10):
                    log.append(
                        {
                            C.VARIANT: v,
                            C.SEED: s,
                            C.STEP: step,
                            C.IMAGES_SEEN: 64 * step,
                            C.TRAIN_SECONDS: step / 10,
                            "d_loss": rng.uniform(),
                            "g_loss": rng.uniform(),
                        }
                    )
                jobs.append(
                    {
                        C.VARIANT: v,
                        C.SEED: s,
                        C.STATUS: C.STATUS_OK,
                        C.STEP: 100 * evals,
                        C.EVAL_INDEX: evals,
                        C.NOTE: "",
                    }
                )
                (out / "samples").mkdir(exist_ok=True)
                (out / "samples" / f"{v}-seed{s}.png").write_bytes(_png(20 * i))
        pd.DataFrame(rows).to_csv(out / "metrics.csv", index=False)
        pd.DataFrame(per_class).to_csv(out / "per_class.csv", index=False)
        pd.DataFrame(log).to_csv(out / "train_log.csv", index=False)
        pd.DataFrame(jobs).to_csv(out / "jobs.csv", index=False)
        record = {
            "format": RUN_FORMAT,
            "run": {"variants": names, "dataset": "fashion-mnist", "budget": "300steps", "seeds": list(range(seeds)),
                    "evals": evals, "eval_samples": 1000},
            "variants": {v: {"plugin": "synthetic", "task": "generation", "conditional": True} for v in names},
            "dataset": {"name": "fashion-mnist", "source": "synthetic", "train_size": 60000, "test_size": 10000},
            "classifier": {"name": "synthetic-classifier", "test_accuracy": 0.925, "weights_sha256": "ab" * 32},
            "environment": {"device": "cpu", "cpu": "synthetic", "ganbench": "0.1.0"},
            "started": "2026-11-24T00:00:00",
        }  # fmt: skip
        (out / "config.json").write_text(json.dumps(record))
        return out

    return make


@pytest.fixture(scope="session")
def ray_instance():
    """One local Ray instance for the session (starting one takes seconds); the executor
    joins it and leaves it running."""
    import logging

    import ray  # in the test extra: CI runs these tests

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
