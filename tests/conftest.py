"""Session fixtures: the real Fashion-MNIST and the held-out classifier, built once.

The classifier is cached in pytest's cache directory (or $GANBENCH_TEST_CACHE), so a local
re-run reuses it; a clean CI checkout trains it once (about 1.5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.evaluation.classifier import load_or_train
from ganbench.registry import load_registry

FIXTURES = Path(__file__).parent / "fixtures"  # prefer the fixtures_dir fixture; kept for modules that import it
# The console script of the environment running the tests (its bin/ need not be on PATH).
_script = Path(sys.executable).with_name("ganbench")
GANBENCH = [str(_script)] if _script.is_file() else [sys.executable, "-m", "ganbench"]


@pytest.fixture(scope="session")
def cache_dir(request) -> Path:
    env = os.environ.get("GANBENCH_TEST_CACHE")
    return Path(env) if env else Path(request.config.cache.mkdir("ganbench"))


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
