"""Evaluation: the held-out classifier, the metrics' inputs and the torch-fidelity integration.

Metric plugins receive an :class:`Evaluation` and may return :class:`MetricValues`; both are
also exported as ``ganbench.Evaluation`` and ``ganbench.MetricValues``.
"""

from ganbench.evaluation.metrics import EvalResult, Evaluation, MetricValues, applicable, run_metrics
from ganbench.evaluation.sampling import generate_samples, upscale_samples

__all__ = [
    "EvalResult",
    "Evaluation",
    "MetricValues",
    "applicable",
    "generate_samples",
    "run_metrics",
    "upscale_samples",
]
