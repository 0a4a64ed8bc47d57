"""The ``ganbench`` command line. Option names are :class:`ganbench.RunConfig` field names
(with ``-`` for ``_``) and the keys of a ``--config`` TOML file; flags given on the command
line override the file."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ganbench import columns as C
from ganbench.config import DEFAULT_BUDGET, RunConfig, load_config_file, parse_search, parse_set
from ganbench.errors import UsageError, describe

log = logging.getLogger("ganbench")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING else message


def _setup_logging(verbose: int, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("ganbench")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ganbench")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and the summary only.")
def cli(verbose: int, quiet: bool) -> None:
    """Benchmark GAN variants fairly: same budget, same seeds, same metrics."""
    _setup_logging(verbose, quiet)


# The options a run and a tune share (RunConfig's fields), in --help order.
_SHARED_OPTIONS = [
    click.option("--variants", metavar="NAME[,NAME...]", help="Variants to train, in order (see `ganbench list`)."),
    click.option("--dataset", metavar="NAME", help="Dataset name [default: fashion-mnist]."),
    click.option(
        "--budget",
        metavar="BUDGET",
        help=f"Per variant and seed: 90s, 2m, 2000steps, 60kimg or 2PFLOP (GFLOP to EFLOP) [default: {DEFAULT_BUDGET}].",
    ),
    click.option("--seeds", metavar="SEEDS", help="Seeds, e.g. 0,1,2 or 0-4 [default: 0]."),
    click.option(
        "--out", type=click.Path(path_type=Path), help="Run directory [default: results/<time>-<variants>-<dataset>]."
    ),
    click.option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps [default: auto]."),
    click.option("--eval-samples", type=int, metavar="N", help="Samples per evaluation [default: 10000]."),
    click.option(
        "--evals", type=int, metavar="K", help="Evaluations spread over the budget; the last at its end [default: 3]."
    ),
    click.option(
        "--plugin", "plugin", multiple=True, type=click.Path(path_type=Path), help="A local plugin file (repeatable)."
    ),
    click.option(
        "--set",
        "set_",
        multiple=True,
        metavar="NAME.KEY=VALUE",
        help="Override a variant's hyperparameter or a metric's or probe's option, e.g. cgan.lr_g=1e-4 "
        "(repeatable; options: `ganbench list`).",
    ),
    click.option(
        "--search",
        multiple=True,
        metavar="VARIANT.KEY=RANGE",
        help="Narrow, widen or add a hyperparameter's search range: log(LOW,HIGH), uniform(LOW,HIGH), int(LOW,HIGH) "
        "or choice(A,B,...), e.g. dcgan.lr_g=log(1e-4,1e-3) (repeatable; see `ganbench list`).",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        help="A TOML file of these options (or a run's config.json).",
    ),
    click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        help="Directory with the dataset's files (IDX files; for --dataset folder, a folder of images).",
    ),
    click.option(
        "--image-size",
        type=int,
        metavar="N",
        help="Side of the square images of a dataset that resizes (folder, cifar10) [default: from the data].",
    ),
    click.option(
        "--download/--no-download",
        default=None,
        help="Allow torchvision's download when no local copy is found [default: allow].",
    ),
    click.option(
        "--inception-weights",
        type=click.Path(path_type=Path),
        help="torch-fidelity's Inception weights file, for fid_inception.",
    ),
    click.option(
        "--dinov2-weights",
        type=click.Path(path_type=Path),
        help="A DINOv2 ViT/14 weights file (facebookresearch's dinov2_vit*14*_pretrain.pth, or timm's), "
        "for fd_dinov2; never downloaded [default: fd_dinov2 is NaN].",
    ),
    click.option("--metrics", metavar="NAME[,NAME...]", help="Metrics to compute [default: all for the task]."),
    click.option(
        "--probes",
        metavar="NAME[,NAME...]",
        help="Probes to run at the final evaluation (see `ganbench list`) [default: every one that applies].",
    ),
    click.option("--no-probes", is_flag=True, default=None, help="Run no probes."),
    click.option(
        "--cache-dir",
        type=click.Path(path_type=Path),
        help="Classifier, downloads, feature caches [default: $GANBENCH_CACHE or ~/.cache/ganbench].",
    ),
    click.option(
        "--checkpoints/--no-checkpoints",
        default=None,
        help="Save each run's full state at every evaluation [default: save].",
    ),
    click.option(
        "--log-every", type=int, metavar="STEPS", help="Steps between loss read-backs from the device [default: 50]."
    ),
    click.option(
        "--executor",
        metavar="NAME",
        help="local (one job at a time, in this process) or ray (each job a Ray task) [default: local].",
    ),
    click.option(
        "--gpus-per-job", type=float, metavar="N", help="GPUs Ray reserves per job [default: 1 on CUDA, else 0]."
    ),
    click.option(
        "--cpus-per-job", type=float, metavar="N", help="CPUs Ray reserves per job; its torch threads [default: 1]."
    ),
    click.option(
        "--ray-address",
        metavar="ADDRESS",
        help="Join this Ray cluster (auto, ray://host:10001) [default: start a local Ray instance].",
    ),
    click.option("--precision", metavar="P", help="Training precision: fp32 or bf16 (autocast) [default: fp32]."),
    click.option(
        "--compile/--no-compile",
        "compile",
        default=None,
        help="torch.compile the variants' networks (slow to start; for long GPU runs) [default: no].",
    ),
    click.option(
        "--resample/--no-resample",
        default=None,
        help="Score each generator's final evaluation again on an independent sampling seed (sampling.csv) "
        "[default: no].",
    ),
]
_SEEDS = click.option("--seeds", metavar="SEEDS", help="Seeds, e.g. 0,1,2 or 0-4 [default: 0].")


def _options(*extra: Any, skip: tuple[str, ...] = ()) -> Any:
    """Decorate a command with the shared options (less ``skip``), then ``extra``."""

    def decorate(f: Any) -> Any:
        for option in reversed([*(o for o in _SHARED_OPTIONS if _name(o) not in skip), *extra]):
            f = option(f)
        return f

    return decorate


def _name(option: Any) -> str:
    probe = option(lambda: None)
    return probe.__click_params__[-1].name


@cli.command()
@_options(skip=("seeds",))
@_SEEDS
@click.option(
    "--holdout",
    type=int,
    metavar="N",
    help="Score on N training images held out of training instead of the test split [default: 0].",
)
@click.option(
    "--track",
    metavar="NAME[,NAME]",
    help="Live tracking while it trains: tensorboard (RUN_DIR/tensorboard), mlflow, or both [default: none].",
)
@click.option(
    "--track-uri",
    metavar="URI",
    help="MLflow tracking URI for --track mlflow [default: sqlite:///RUN_DIR/mlruns.db].",
)
@click.option(
    "--report",
    "write_report",
    is_flag=True,
    help="Write the run's report (html and md) into RUN_DIR/report at the end.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR with its own options: finished jobs are kept, the others continue "
    "from their last checkpoint. Running the same command with the same --out does the same. With --seeds, "
    "add seeds to the run (a superset of its seeds): only the new jobs train.",
)
def run(
    config_file: Path | None,
    set_: tuple[str, ...],
    search: tuple[str, ...],
    plugin: tuple[Path, ...],
    resume: Path | None,
    write_report: bool,
    **options: Any,
) -> int:
    """Train each variant for each seed under the same budget and evaluate it.

    Exit status: 0 every job ok; 1 a job failed or diverged; 2 bad input; 130 interrupted
    (resumable)."""
    values, source = _merged(config_file, set_, search, plugin, resume, options, "RUN_DIR", "run_options")
    config = RunConfig.from_mapping(values, source=source)
    from ganbench.harness.runner import run as run_benchmark  # torch and friends: only once the input is valid

    result = run_benchmark(config, report=write_report)
    return _finish(result.format_summary(), result.run_dir, write_report, result.unfinished)


def _merged(
    config_file: Path | None,
    set_: tuple[str, ...],
    search: tuple[str, ...],
    plugin: tuple[Path, ...],
    resume: Path | None,
    options: dict[str, Any],
    what: str,
    reader: str,
) -> tuple[dict[str, Any], str]:
    """The options of a command: a resumed directory's own (``reader`` of
    ``ganbench.harness.rundir`` or ``.tune``), or a --config file's, with the command line's on top."""
    if options.pop("no_probes"):
        if options.get("probes") is not None:
            raise UsageError("--probes and --no-probes contradict each other; give one")
        options["probes"] = ()
    if resume is not None and (config_file is not None or options.get("out") is not None):
        noun = "run" if what == "RUN_DIR" else "tune"
        raise UsageError(f"--resume {what} takes the {noun}'s own options and directory; drop --config and --out")
    if resume is not None:
        if reader == "run_options":
            from ganbench.harness.rundir import run_options as read
        else:
            from ganbench.harness.tune import tune_options as read

        values: dict[str, Any] = read(resume)
        source = f"--resume {resume}"
    else:
        values = dict(load_config_file(config_file)) if config_file else {}
        source = f"{config_file}" if config_file else "command line"
    values = {k.replace("-", "_"): v for k, v in values.items()}
    if set_:
        merged = parse_set(values.get("set", {}))
        for variant, table in parse_set(set_).items():
            merged.setdefault(variant, {}).update(table)
        values["set"] = merged
    if search:
        ranges = parse_search(values.get("search", {}))
        for variant, table in parse_search(search).items():
            ranges.setdefault(variant, {}).update(table)
        values["search"] = ranges
    if plugin:
        values["plugin"] = [*(values.get("plugin") or []), *plugin]
    values.update({k: v for k, v in options.items() if v is not None})
    return values, source


@cli.command()
@_options(
    click.option(
        "--final-seeds", metavar="SEEDS", help="Phase 2: the fresh seeds each chosen setting trains on [default: 0-7]."
    ),
    click.option("--trials", type=int, metavar="N", help="Settings tried per variant in phase 1 [default: 16]."),
    click.option(
        "--select",
        metavar="COLUMN",
        help="The score that chooses each variant's setting, on held-out training images [default: fid_domain].",
    ),
    click.option(
        "--holdout",
        type=int,
        metavar="N",
        help="Training images held out of phase 1's training and scored instead of the test split [default: 10000].",
    ),
    click.option("--sobol-seed", type=int, metavar="SEED", help="Seed of the settings' Sobol sequence [default: 0]."),
    click.option(
        "--report", "write_report", is_flag=True, help="Write the tuned report into TUNE_DIR/report at the end."
    ),
    click.option(
        "--resume",
        type=click.Path(path_type=Path),
        metavar="TUNE_DIR",
        help="Continue the tune in TUNE_DIR with its own options: finished trials are kept. Running the same "
        "command with the same --out does the same.",
    ),
    skip=("seeds",),
)
def tune(
    config_file: Path | None,
    set_: tuple[str, ...],
    search: tuple[str, ...],
    plugin: tuple[Path, ...],
    resume: Path | None,
    write_report: bool,
    **options: Any,
) -> int:
    """Give every variant the same hyperparameter search, then train each one's best setting
    on fresh seeds (docs/tuning.md).

    Phase 1 tries --trials settings per variant, drawn at the same quasi-random (Sobol)
    positions for every variant from its declared search space (`ganbench list`; --search
    changes it), each trained once under --budget and scored on training images held out of
    training. Phase 2 trains each variant's best setting on --final-seeds under the same
    budget, scored on the test split: its leaderboard and verdicts are the tune's result.

    Exit status: 0 every final job ok; 1 a final job failed or no trial of a variant gave a
    score; 2 bad input; 130 interrupted (resumable)."""
    values, source = _merged(config_file, set_, search, plugin, resume, options, "TUNE_DIR", "tune_options")
    from ganbench.harness.tune import TuneConfig, TuneFailed
    from ganbench.harness.tune import tune as run_tune

    config = TuneConfig.from_mapping(values, source=source)
    try:
        result = run_tune(config, report=write_report)
    except TuneFailed as exc:
        click.echo(f"ganbench: {exc}", err=True)
        return 1
    return _finish(result.format_summary(), result.tune_dir, write_report, result.final.unfinished)


def _finish(summary: str, directory: Path, write_report: bool, unfinished: Any) -> int:
    """Print a command's summary and where its results are; list the jobs that did not end ok
    on stderr; the exit status (1 when there are any)."""
    click.echo(summary)
    click.echo(f"\nresults: {directory}")
    if write_report:
        click.echo(f"report: {directory / 'report' / 'report.html'}")
    for _, job in unfinished.iterrows():
        click.echo(
            f"ganbench: {job[C.VARIANT]} seed {job[C.SEED]} {job[C.STATUS]} at step {job[C.STEP]}: {job[C.NOTE]}",
            err=True,
        )
    return 1 if len(unfinished) else 0


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where the report goes [default: RUN_DIR/report].")
@click.option("--format", "formats", default="html,md", show_default=True, help="html, md, or both.")
def report(run_dir: Path, out: Path | None, formats: str) -> None:
    """Write the report of a run (or of a tune: its search, then its final run): report.html
    (self-contained) and report.md with its PNGs.

    Reads only the run's tables and pictures: no training, no torch."""
    from ganbench.report.render import build_report, parse_formats
    from ganbench.report.tuning import build_tune_report, is_tune

    build = build_tune_report if is_tune(run_dir) else build_report
    written = build(run_dir, out, parse_formats(formats))
    for path in written.values():
        click.echo(f"report: {path}")


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where the report goes [default: results/compare-<time>].")
@click.option("--format", "formats", default="html,md", show_default=True, help="html, md, or both.")
def compare(run_dirs: tuple[Path, ...], out: Path | None, formats: str) -> None:
    """One report across runs: each variant before and after, with the significance of every
    change. Runs on different datasets or feature spaces are refused."""
    import datetime as dt

    from ganbench.report.render import build_comparison, parse_formats

    out = out or Path("results") / f"compare-{dt.datetime.now():%Y%m%d-%H%M%S}"
    for path in build_comparison(run_dirs, out, parse_formats(formats)).values():
        click.echo(f"report: {path}")


@cli.command("list")
@click.option("--plugin", multiple=True, type=click.Path(path_type=Path), help="Also load this local plugin file.")
def list_(plugin: tuple[Path, ...]) -> None:
    """Variants, datasets, metrics and probes, each with the plugin that provides it."""
    from ganbench.registry import load_registry

    registry = load_registry(plugin)

    def table(title: str, rows: list[tuple[str, ...]]) -> None:
        click.echo(f"{title}:")
        if not rows:
            click.echo("  (none)")
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
        for r in rows:
            click.echo("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
        click.echo()

    table(
        "Variants",
        [
            (name, r.spec.task + (", conditional" if r.spec.conditional else ""), f"[{r.plugin}]", r.spec.description)
            for name, r in sorted(registry.variants.items())
        ],
    )
    table(
        "Search spaces (--search VARIANT.KEY=RANGE narrows or widens one)",
        [
            (name, " ".join(f"{key}={search.text}" for key, search in r.spec.search_space.items()) or "(none)")
            for name, r in sorted(registry.variants.items())
        ],
    )
    table("Datasets", [(name, f"[{r.plugin}]", r.spec.description) for name, r in sorted(registry.datasets.items())])
    table(
        "Metrics",
        [
            (name, ", ".join(r.spec.columns), f"[{r.plugin}]", r.spec.description)
            for name, r in sorted(registry.metrics.items())
        ],
    )
    table(
        "Probes",
        [
            (name, ", ".join(r.spec.columns), f"[{r.plugin}]", r.spec.description)
            for name, r in sorted(registry.probes.items())
        ],
    )
    table(
        "Options of metrics and probes (--set NAME.KEY=VALUE)",
        [
            (name, " ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(r.spec.config)))
            for kind in (registry.metrics, registry.probes)
            for name, r in sorted(kind.items())
            if dataclasses.fields(r.spec.config)
        ],
    )
    if registry.errors:
        click.echo("Plugin errors:")
        for error in registry.errors:
            click.echo(f"  {error}")


@cli.command()
@click.option("--dataset", default="fashion-mnist", show_default=True, metavar="NAME", help="Dataset name.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Directory with the dataset's files.")
@click.option("--image-size", type=int, metavar="N", help="Side of a resizing dataset's images [default: from the data].")
@click.option("--download/--no-download", default=True, help="Allow torchvision's download [default: allow].")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    help="Where a download goes [default: $GANBENCH_CACHE or ~/.cache/ganbench].",
)
def data(dataset: str, data_dir: Path | None, image_size: int | None, download: bool, cache_dir: Path | None) -> None:
    """Find a dataset (downloading it if allowed and needed) and say where it is."""
    from ganbench.config import default_cache_dir
    from ganbench.data import DataRequest, check_splits, load_dataset, resolved_spec
    from ganbench.registry import load_registry

    spec = load_registry().dataset(dataset)
    splits = load_dataset(spec, DataRequest(data_dir, download, cache_dir or default_cache_dir(), image_size))
    check_splits(resolved_spec(spec, splits), splits)
    click.echo(
        f"{dataset}: {splits.train_images.shape[0]} train / {splits.test_images.shape[0]} test images "
        f"{'x'.join(map(str, splits.image_shape))}, from {splits.source}"
    )


# The run options evaluate mirrors (the same flags as run's; unset: the checkpoint's run's).
_EVALUATE_SHARED = (
    "dataset", "seeds", "out", "device", "eval_samples", "plugin", "set_", "data_dir", "download",
    "inception_weights", "dinov2_weights", "metrics", "probes", "no_probes", "cache_dir", "resample",
)  # fmt: skip


def _only(*names: str) -> Any:
    def decorate(f: Any) -> Any:
        for option in reversed([o for o in _SHARED_OPTIONS if _name(o) in names]):
            f = option(f)
        return f

    return decorate


@cli.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), help="RUN_DIR/checkpoints/<variant>-seed<k>.pt of a run.")
@click.option("--torchscript", type=click.Path(path_type=Path), help="A TorchScript generator: forward(z, labels=None).")
@click.option("--images", type=click.Path(path_type=Path), help="A folder of generated PNGs (per class in subfolders).")
@click.option("--name", metavar="NAME", help="The variant column of its rows [default: from the source].")
@click.option("--z-dim", type=int, metavar="N", help="The TorchScript generator's latent size [default: its z_dim].")
@click.option(
    "--conditional/--unconditional", default=None, help="Whether it takes labels [default: its attribute or folder]."
)
@_only(*_EVALUATE_SHARED)
@click.option("--report", "write_report", is_flag=True, help="Write the report into RUN_DIR/report at the end.")
def evaluate(set_: tuple[str, ...], plugin: tuple[Path, ...], write_report: bool, **options: Any) -> int:
    """Score a generator ganbench did not train (a checkpoint, a TorchScript file or a folder
    of images) with a run's metrics, probes and reference rows, into a new run directory.

    Exit status: 0 scored; 2 bad input."""
    if options.pop("no_probes"):
        if options.get("probes") is not None:
            raise UsageError("--probes and --no-probes contradict each other; give one")
        options["probes"] = ()
    if set_:
        options["set"] = parse_set(set_)
    if plugin:
        options["plugin"] = plugin
    from ganbench.harness.evaluate import EvaluateConfig
    from ganbench.harness.evaluate import evaluate as run_evaluate

    result = run_evaluate(EvaluateConfig.from_mapping(options, source="command line"), report=write_report)
    return _finish(result.format_summary(), result.run_dir, write_report, result.unfinished)


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="A run's checkpoint file.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="A new or empty folder for the PNGs.")
@click.option("--per-class", is_flag=True, help="One grid per class (conditional generators).")
@click.option("--interpolate", is_flag=True, help="A latent interpolation strip (one row per class when conditional).")
@click.option("--n", "n", type=int, metavar="N", help="N images as PNG files (per class in subfolders when conditional).")
@click.option("--seed", type=int, metavar="SEED", help="Latent seed [default: the checkpoint's evaluation latents].")
@click.option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps [default: auto].")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Where the held-out classifier is cached.")
def sample(**options: Any) -> None:
    """Write a checkpoint's samples as PNGs: a grid (the default), grids per class, a latent
    interpolation strip, or N images."""
    from ganbench.harness.sample import SampleConfig, write_samples

    for path in write_samples(SampleConfig.from_mapping(options)):
        click.echo(f"wrote: {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for bad input."""
    try:
        result = cli.main(args=argv, prog_name="ganbench", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"ganbench: error: {exc.format_message()}{hint}", err=True)
        return 2
    except UsageError as exc:
        click.echo(f"ganbench: error: {exc}", err=True)
        return exc.exit_code
    except (KeyboardInterrupt, click.Abort) as exc:
        # click turns an EOFError into Abort just as it does Ctrl-C: only Ctrl-C is an interruption
        cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            run_dir = getattr(cause, "run_dir", None)
            command = getattr(cause, "command", "run")
            hint = f"; continue it with: ganbench {command} --resume {run_dir}" if run_dir else ""
            click.echo(f"ganbench: interrupted; rows written so far are kept{hint}", err=True)
            return 130
        click.echo(f"ganbench: error: aborted ({describe(cause) if cause else 'no reason given'})", err=True)
        return 1


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
