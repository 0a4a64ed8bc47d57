"""Session fixtures: the real Fashion-MNIST and the held-out classifier, built once.

The classifier is cached in pytest's cache directory (or $GANBENCH_TEST_CACHE), so a local
re-run reuses it; a clean CI checkout trains it once (about 1.5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ganbench.data import DataRequest
from ganbench.errors import UsageError
from ganbench.evaluation.classifier import load_or_train
from ganbench.registry import load_registry

FIXTURES = Path(__file__).parent / "fixtures"


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
    )
