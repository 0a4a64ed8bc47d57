"""ganbench's own metrics, registered through the ``ganbench_register_metrics`` hook."""

from __future__ import annotations

import math

from ganbench import columns as C
from ganbench.evaluation import Evaluation, MetricValues
from ganbench.evaluation.class_metrics import class_consistency, class_coverage
from ganbench.hookspecs import hookimpl
from ganbench.specs import HIGHER, LOWER, TASK_SUPER_RESOLUTION, TASKS, MetricSpec


def _real_name(ev: Evaluation) -> str:
    """Names the cached features of the split the samples are compared with: the test split,
    or the training images a hyperparameter search holds out (``--holdout``)."""
    return f"{ev.data.name}-{ev.data.eval_split}"


def _neighbourhoods(ev: Evaluation):
    """Precision, density and coverage from one pass over the samples' distances to the real
    subset, shared by domain-fidelity and density-coverage (the costliest part of both)."""
    from ganbench.evaluation.density_coverage import neighbourhoods  # torch-fidelity: imported when first needed

    def build():
        return neighbourhoods(ev.classifier, ev.features, ev.data.test_images, _real_name(ev), ev.cache_dir, ev.device)

    return ev.shared("ganbench.metrics.neighbourhoods", build)


def compute_domain(ev: Evaluation) -> dict[str, float]:
    from ganbench.evaluation.fidelity import domain_metrics

    features = ev.features  # computed before the parts run at once

    def precision() -> float:  # in the pass that density-coverage shares
        return _neighbourhoods(ev).precision

    return domain_metrics(
        ev.classifier, features, ev.data.test_images, _real_name(ev), ev.cache_dir, ev.device, precision=precision
    )


def compute_density_coverage(ev: Evaluation) -> dict[str, float]:
    found = _neighbourhoods(ev)
    return {C.DENSITY_DOMAIN: found.density, C.COVERAGE_DOMAIN: found.coverage}


def compute_intra_class_fid(ev: Evaluation) -> MetricValues:
    if ev.labels is None:
        return MetricValues({C.IFID_DOMAIN: math.nan}, notes={C.IFID_DOMAIN: "unconditional variant"})
    from ganbench.evaluation.intra_class import intra_class_fid

    data = ev.data
    overall, per_class = intra_class_fid(
        ev.classifier, ev.features, ev.labels, data.test_images, data.test_labels, data.num_classes,
        _real_name(ev), ev.cache_dir,
    )  # fmt: skip
    notes = {C.IFID_DOMAIN: "no class has two samples and two evaluation images"} if math.isnan(overall) else {}
    return MetricValues({C.IFID_DOMAIN: overall}, per_class={C.IFID_DOMAIN: per_class}, notes=notes)


def compute_inception(ev: Evaluation) -> MetricValues:
    from ganbench.evaluation.fidelity import inception_fid

    weights = ev.inception_weights()
    if weights.path is None:
        return MetricValues({C.FID_INCEPTION: math.nan}, notes={C.FID_INCEPTION: weights.reason})
    fid = inception_fid(weights.path, ev.samples, ev.data.test_images, _real_name(ev), ev.cache_dir, ev.device)
    return MetricValues({C.FID_INCEPTION: fid})


def compute_dinov2(ev: Evaluation) -> MetricValues:
    from ganbench.evaluation.fidelity import dinov2_fd

    weights = ev.dinov2_weights()
    if weights.path is None:
        return MetricValues({C.FD_DINOV2: math.nan}, notes={C.FD_DINOV2: weights.reason})
    fd = dinov2_fd(weights, ev.samples, ev.data.test_images, _real_name(ev), ev.cache_dir, ev.device)
    return MetricValues({C.FD_DINOV2: fd})


def compute_classes(ev: Evaluation) -> MetricValues:
    k = ev.data.num_classes
    coverage = class_coverage(ev.predicted, k)
    if ev.labels is None:
        return MetricValues(
            {C.CLASS_CONSISTENCY: math.nan, C.CLASS_COVERAGE: coverage},
            notes={C.CLASS_CONSISTENCY: "unconditional variant"},
        )
    overall, per_class = class_consistency(ev.predicted, ev.labels, k)
    return MetricValues(
        {C.CLASS_CONSISTENCY: overall, C.CLASS_COVERAGE: coverage}, per_class={C.CLASS_CONSISTENCY: per_class}
    )


def compute_superres(ev: Evaluation) -> dict[str, float]:
    from ganbench.superres import psnr, ssim

    if ev.reference is None:
        raise ValueError("super-resolution metrics need the high-resolution references")
    return {C.PSNR: psnr(ev.samples, ev.reference).mean().item(), C.SSIM: ssim(ev.samples, ev.reference).mean().item()}


DOMAIN_FIDELITY = MetricSpec(
    name="domain-fidelity",
    columns=(C.FID_DOMAIN, C.KID_DOMAIN, C.PRECISION_DOMAIN, C.RECALL_DOMAIN),
    compute=compute_domain,
    tasks=frozenset(TASKS),
    description="FID, KID, precision/recall vs the test split in the held-out classifier's feature space",
    directions={C.FID_DOMAIN: LOWER, C.KID_DOMAIN: LOWER, C.PRECISION_DOMAIN: HIGHER, C.RECALL_DOMAIN: HIGHER},
)
DENSITY_COVERAGE = MetricSpec(
    name="density-coverage",
    columns=(C.DENSITY_DOMAIN, C.COVERAGE_DOMAIN),
    compute=compute_density_coverage,
    tasks=frozenset(TASKS),
    description="density and coverage (Naeem et al. 2020, k=5) vs precision/recall's test subset, same features",
    directions={C.DENSITY_DOMAIN: HIGHER, C.COVERAGE_DOMAIN: HIGHER},
)
INTRA_CLASS_FID = MetricSpec(
    name="intra-class-fid",
    columns=(C.IFID_DOMAIN,),
    compute=compute_intra_class_fid,
    tasks=frozenset(TASKS),
    description="mean over classes of the FID of each requested class vs its test images (NaN if unconditional)",
    directions={C.IFID_DOMAIN: LOWER},
)
INCEPTION_FID = MetricSpec(
    name="inception-fid",
    columns=(C.FID_INCEPTION,),
    compute=compute_inception,
    tasks=frozenset(TASKS),
    final_only=True,  # ~6 GFLOP per image at 299x299: too slow on a CPU for every evaluation point
    description="torch-fidelity's Inception FID vs the test split (final evaluation only; NaN without weights)",
    directions={C.FID_INCEPTION: LOWER},
)
DINOV2_FD = MetricSpec(
    name="dinov2-fd",
    columns=(C.FD_DINOV2,),
    compute=compute_dinov2,
    tasks=frozenset(TASKS),
    final_only=True,  # a ViT at 224x224: 12 GFLOP per image for ViT-S/14, 599 for ViT-g/14
    description="Fréchet distance in DINOv2 ViT/14 features vs the test split (final evaluation only; "
    "NaN without --dinov2-weights)",
    directions={C.FD_DINOV2: LOWER},
)
CLASS_JUDGEMENT = MetricSpec(
    name="class-consistency",
    columns=(C.CLASS_CONSISTENCY, C.CLASS_COVERAGE),
    compute=compute_classes,
    tasks=frozenset(TASKS),
    description="held-out classifier accuracy vs requested labels; evenness of predicted classes",
    directions={C.CLASS_CONSISTENCY: HIGHER, C.CLASS_COVERAGE: HIGHER},
)


SUPERRES_FIDELITY = MetricSpec(
    name="sr-fidelity",
    columns=(C.PSNR, C.SSIM),
    compute=compute_superres,
    tasks=frozenset({TASK_SUPER_RESOLUTION}),
    description="PSNR (dB) and SSIM of the upscaled test images against the originals",
    directions={C.PSNR: HIGHER, C.SSIM: HIGHER},
)


@hookimpl
def ganbench_register_metrics(register):
    for spec in (
        DOMAIN_FIDELITY, DENSITY_COVERAGE, INTRA_CLASS_FID, INCEPTION_FID, DINOV2_FD, CLASS_JUDGEMENT, SUPERRES_FIDELITY,
    ):
        register(spec)
