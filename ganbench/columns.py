"""Column names of ganbench's tables. Metric names are these constants: the same string is
the metric's name in code, its column in metrics.csv and its key in the Python API."""

# Identity and bookkeeping of a row.
VARIANT = "variant"
DATASET = "dataset"
SEED = "seed"
EVAL_INDEX = "eval_index"
STEP = "step"
IMAGES_SEEN = "images_seen"
TRAIN_SECONDS = "train_seconds"
CRITIC_STEPS = "critic_steps"
STATUS = "status"
NOTE = "note"

# Metrics in the held-out classifier's feature space (torch-fidelity).
FID_DOMAIN = "fid_domain"
KID_DOMAIN = "kid_domain"
PRECISION_DOMAIN = "precision_domain"
RECALL_DOMAIN = "recall_domain"
# torch-fidelity's standard Inception FID; NaN when its weights cannot be had.
FID_INCEPTION = "fid_inception"
# Super-resolution: fidelity of the upscaled test images to the originals.
PSNR = "psnr"
SSIM = "ssim"
# Held-out classifier's judgement of the samples.
CLASS_CONSISTENCY = "class_consistency"
CLASS_COVERAGE = "class_coverage"

# Cost.
TRAIN_IMG_PER_S = "train_img_per_s"
GEN_IMG_PER_S = "gen_img_per_s"
PEAK_MEM_MB = "peak_mem_mb"
EVAL_SECONDS = "eval_seconds"

# Per-class table.
CLASS_INDEX = "class_index"
CLASS_NAME = "class_name"

# Values of STATUS.
STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
STATUS_REFERENCE = "reference"  # a row of real data or a baseline, not a trained variant

# Reference rows: the train split scored like a variant's samples; the bicubic baseline of
# super-resolution (name + scale, e.g. "bicubic-x2").
REAL_DATA = "real-data"
BICUBIC = "bicubic"

ID_COLUMNS = (VARIANT, DATASET, SEED, EVAL_INDEX, STEP, IMAGES_SEEN, TRAIN_SECONDS, CRITIC_STEPS, STATUS)
METRIC_COLUMNS = (
    FID_DOMAIN, KID_DOMAIN, PRECISION_DOMAIN, RECALL_DOMAIN, FID_INCEPTION, CLASS_CONSISTENCY, CLASS_COVERAGE,
    PSNR, SSIM,
)  # fmt: skip
COST_COLUMNS = (TRAIN_IMG_PER_S, GEN_IMG_PER_S, PEAK_MEM_MB, EVAL_SECONDS)
# Columns that measure the machine rather than the model: they differ between identical runs.
TIMING_COLUMNS = (TRAIN_SECONDS, TRAIN_IMG_PER_S, GEN_IMG_PER_S, PEAK_MEM_MB, EVAL_SECONDS)
# Lower is better for these; higher for the other metrics.
LOWER_IS_BETTER = frozenset({FID_DOMAIN, KID_DOMAIN, FID_INCEPTION})
