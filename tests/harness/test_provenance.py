"""config.json's environment record: versions, the CPU and the thread counts the numbers were made with."""

import json

import torch

from ganbench.evaluation.threads import METRIC_THREADS
from ganbench.harness.provenance import environment


def test_the_environment_records_torchs_threads_each_blas_and_the_metric_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = environment(torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    assert env["torch_threads"] == 1 and env["torch_interop_threads"] >= 1
    assert env["metric_threads"] == METRIC_THREADS
    assert env["blas"] and all({"library", "file", "version", "threads"} <= set(b) for b in env["blas"])
    assert all(isinstance(b["threads"], int) and b["threads"] >= 1 for b in env["blas"])
    assert isinstance(env["openmp"], list)
    assert json.loads(json.dumps(env)) == env  # what config.json holds
