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
# The run's fast-path settings (--precision, --compile): they change what training computes.
PRECISION = "precision"
COMPILED = "compile"
STATUS = "status"
NOTE = "note"

# Metrics in the held-out classifier's feature space (torch-fidelity).
FID_DOMAIN = "fid_domain"
KID_DOMAIN = "kid_domain"
PRECISION_DOMAIN = "precision_domain"
RECALL_DOMAIN = "recall_domain"
# Density and coverage (Naeem et al. 2020, k = 5): same features, same real subset as precision/recall.
DENSITY_DOMAIN = "density_domain"
COVERAGE_DOMAIN = "coverage_domain"
# Intra-class FID: per class, FID of the samples requested with it against its images of the
# evaluation split (same features); the mean over classes. NaN for unconditional variants.
IFID_DOMAIN = "ifid_domain"
# torch-fidelity's standard Inception FID; NaN when its weights cannot be had.
FID_INCEPTION = "fid_inception"
# Fréchet distance in DINOv2 ViT/14 class-token features; NaN unless --dinov2-weights is given.
FD_DINOV2 = "fd_dinov2"
# Super-resolution: fidelity of the upscaled test images to the originals.
PSNR = "psnr"
SSIM = "ssim"
# Held-out classifier's judgement of the samples.
CLASS_CONSISTENCY = "class_consistency"
CLASS_COVERAGE = "class_coverage"
# Probes (final evaluation only): steering latents toward attributes, penalised ("steer_") and
# plain ("steer_plain_"), each the mean over attribute targets; label swap; path length;
# classification accuracy score; memorisation (nearest training images, two spaces).
STEER_SUCCESS = "steer_success"
STEER_GAIN = "steer_gain"
STEER_LEAKAGE = "steer_leakage"
STEER_DISENTANGLEMENT = "steer_disentanglement"
STEER_VERIFIED_GAIN = "steer_verified_gain"
STEER_LATENT_DISTANCE = "steer_latent_distance"
STEER_PLAIN_SUCCESS = "steer_plain_success"
STEER_PLAIN_GAIN = "steer_plain_gain"
STEER_PLAIN_LEAKAGE = "steer_plain_leakage"
STEER_PLAIN_DISENTANGLEMENT = "steer_plain_disentanglement"
STEER_PLAIN_VERIFIED_GAIN = "steer_plain_verified_gain"
STEER_PLAIN_LATENT_DISTANCE = "steer_plain_latent_distance"
SWAP_CONSISTENCY = "swap_consistency"
PPL_DOMAIN = "ppl_domain"
CAS = "cas"
MEMORISED_SHARE_DOMAIN = "memorised_share_domain"
MEMORISED_SHARE_PIXEL = "memorised_share_pixel"
NN_RATIO_DOMAIN = "nn_ratio_domain"
NN_RATIO_PIXEL = "nn_ratio_pixel"

# Cost. TRAIN_FLOPS: the compute a job has had, step x FLOPs of one step (torch's count, a
# multiply-add = 2); the same on every machine, unlike the timings.
TRAIN_FLOPS = "train_flops"
TRAIN_IMG_PER_S = "train_img_per_s"
GEN_IMG_PER_S = "gen_img_per_s"
PEAK_MEM_MB = "peak_mem_mb"
EVAL_SECONDS = "eval_seconds"
PROBE_SECONDS = "probe_seconds"
# --compile: seconds of the warm-up step that compiles the networks before the budget's clock
# starts (not in train_seconds; summed over a job's resumes); NaN without --compile.
COMPILE_SECONDS = "compile_seconds"

# Per-class table.
CLASS_INDEX = "class_index"
CLASS_NAME = "class_name"

# Sampling table (sampling.csv, --resample): a job's final generator scored on two independent
# draws of latents. DRAW 0 is the main evaluation (its values are metrics.csv's final row),
# DRAW 1 the resample; SAMPLING_SEED seeds the latents of each draw.
DRAW = "draw"
SAMPLING_SEED = "sampling_seed"

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

SETTING_COLUMNS = (PRECISION, COMPILED)
ID_COLUMNS = (
    VARIANT, DATASET, SEED, EVAL_INDEX, STEP, IMAGES_SEEN, TRAIN_SECONDS, CRITIC_STEPS, *SETTING_COLUMNS, STATUS,
)  # fmt: skip
METRIC_COLUMNS = (
    FID_DOMAIN, KID_DOMAIN, PRECISION_DOMAIN, RECALL_DOMAIN, DENSITY_DOMAIN, COVERAGE_DOMAIN, IFID_DOMAIN,
    FID_INCEPTION, FD_DINOV2, CLASS_CONSISTENCY, CLASS_COVERAGE, PSNR, SSIM,
)  # fmt: skip
STEER_COLUMNS = (
    STEER_SUCCESS, STEER_GAIN, STEER_LEAKAGE, STEER_DISENTANGLEMENT, STEER_VERIFIED_GAIN, STEER_LATENT_DISTANCE,
)  # fmt: skip
STEER_PLAIN_COLUMNS = (
    STEER_PLAIN_SUCCESS, STEER_PLAIN_GAIN, STEER_PLAIN_LEAKAGE, STEER_PLAIN_DISENTANGLEMENT,
    STEER_PLAIN_VERIFIED_GAIN, STEER_PLAIN_LATENT_DISTANCE,
)  # fmt: skip
MEMORISATION_COLUMNS = (MEMORISED_SHARE_DOMAIN, MEMORISED_SHARE_PIXEL, NN_RATIO_DOMAIN, NN_RATIO_PIXEL)
PROBE_COLUMNS = (*STEER_COLUMNS, *STEER_PLAIN_COLUMNS, SWAP_CONSISTENCY, PPL_DOMAIN, CAS, *MEMORISATION_COLUMNS)
COST_COLUMNS = (TRAIN_FLOPS, TRAIN_IMG_PER_S, GEN_IMG_PER_S, PEAK_MEM_MB, EVAL_SECONDS, PROBE_SECONDS, COMPILE_SECONDS)
# Columns that measure the machine rather than the model: they differ between identical runs.
TIMING_COLUMNS = (
    TRAIN_SECONDS, TRAIN_IMG_PER_S, GEN_IMG_PER_S, PEAK_MEM_MB, EVAL_SECONDS, PROBE_SECONDS, COMPILE_SECONDS,
)  # fmt: skip
# Which way is better, for reports: lower for these, higher for the columns in HIGHER_IS_BETTER;
# the rest (ids, times, train_flops: the compute given, steer_*latent_distance: how far steering
# moved, neither good nor bad in itself; nn_ratio_*: best near 1, below it the samples sit closer
# to the training images than unseen real images do, above it farther from the data) have no
# direction. A metric's or probe's column takes its direction from its spec's ``directions`` (the
# built-in plugins declare these same ones; a test keeps them equal), recorded in each run's
# config.json; these sets give the host's own columns (cost) their direction, and every column of
# a run written before that record existed.
LOWER_IS_BETTER = frozenset(
    {
        FID_DOMAIN, KID_DOMAIN, IFID_DOMAIN, FID_INCEPTION, FD_DINOV2, STEER_LEAKAGE, STEER_PLAIN_LEAKAGE, PPL_DOMAIN,
        MEMORISED_SHARE_DOMAIN, MEMORISED_SHARE_PIXEL, PEAK_MEM_MB,
    }
)  # fmt: skip
HIGHER_IS_BETTER = frozenset(
    {*METRIC_COLUMNS, *PROBE_COLUMNS, TRAIN_IMG_PER_S, GEN_IMG_PER_S}
    - LOWER_IS_BETTER
    - {STEER_LATENT_DISTANCE, STEER_PLAIN_LATENT_DISTANCE, NN_RATIO_DOMAIN, NN_RATIO_PIXEL}
)
