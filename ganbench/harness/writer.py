"""The run directory: metrics tables, summary, per-class table, training log, config and
sample grids. Tables are rewritten atomically after every evaluation, so an interrupted or
failed run keeps everything computed before it stopped."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ganbench import columns as C

METRICS_CSV = "metrics.csv"
METRICS_PARQUET = "metrics.parquet"
SUMMARY_CSV = "summary.csv"
PER_CLASS_CSV = "per_class.csv"
TRAIN_LOG_CSV = "train_log.csv"
CONFIG_JSON = "config.json"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


class ResultsWriter:
    """Accumulates rows and rewrites the run directory's tables."""

    def __init__(self, run_dir: Path, metric_columns: Sequence[str]) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        extra = [c for c in metric_columns if c not in C.METRIC_COLUMNS]
        self.columns = [*C.ID_COLUMNS, *C.METRIC_COLUMNS, *extra, *C.COST_COLUMNS, C.NOTE]
        self.rows: list[dict[str, Any]] = []
        self.per_class: list[dict[str, Any]] = []
        self.train_log: list[dict[str, Any]] = []

    def write_config(self, config: dict[str, Any]) -> None:
        _atomic_write(
            self.run_dir / CONFIG_JSON, lambda p: p.write_text(json.dumps(config, indent=2, default=str) + "\n")
        )

    def add_row(self, row: dict[str, Any], per_class: dict[str, list[float]], class_names: Sequence[str]) -> None:
        self.rows.append(row)
        if not per_class:
            return
        for k, name in enumerate(class_names):
            self.per_class.append(
                {
                    **{c: row[c] for c in (C.VARIANT, C.DATASET, C.SEED, C.EVAL_INDEX, C.STEP)},
                    C.CLASS_INDEX: k,
                    C.CLASS_NAME: name,
                    **{column: values[k] for column, values in per_class.items()},
                }
            )

    def add_log(self, variant: str, seed: int, step: int, images_seen: int, seconds: float, losses: dict) -> None:
        self.train_log.append(
            {
                C.VARIANT: variant,
                C.SEED: seed,
                C.STEP: step,
                C.IMAGES_SEEN: images_seen,
                C.TRAIN_SECONDS: seconds,
                **losses,
            }
        )

    def metrics_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=self.columns)
        return frame.astype({C.SEED: "int64", C.EVAL_INDEX: "int64", C.STEP: "int64", C.IMAGES_SEEN: "int64"})

    def flush(self) -> pd.DataFrame:
        frame = self.metrics_frame()
        _atomic_write(self.run_dir / METRICS_CSV, lambda p: frame.to_csv(p, index=False))
        _atomic_write(self.run_dir / METRICS_PARQUET, lambda p: frame.to_parquet(p, index=False))
        if self.per_class:
            per_class = pd.DataFrame(self.per_class)
            _atomic_write(self.run_dir / PER_CLASS_CSV, lambda p: per_class.to_csv(p, index=False))
        if self.train_log:
            log = pd.DataFrame(self.train_log)
            _atomic_write(self.run_dir / TRAIN_LOG_CSV, lambda p: log.to_csv(p, index=False))
        return frame

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        frame = self.flush()
        summary = summarize(frame)
        _atomic_write(self.run_dir / SUMMARY_CSV, lambda p: summary.to_csv(p, index=False))
        return frame, summary


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each (variant, seed)'s last row: its final evaluation, or where it stopped."""
    if frame.empty:
        return frame
    order = frame.reset_index(drop=True)
    return order.loc[order.groupby([C.VARIANT, C.SEED], sort=False)[C.EVAL_INDEX].idxmax()]


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each variant's final evaluation."""
    numeric = [c for c in frame.columns if c not in (C.VARIANT, C.DATASET, C.SEED, C.EVAL_INDEX, C.STATUS, C.NOTE)]
    rows = []
    finals = final_rows(frame)
    for variant, group in finals.groupby(C.VARIANT, sort=False):
        counts = group[C.STATUS].value_counts()
        status = counts.index[0] if len(counts) == 1 else ", ".join(f"{n} {s}" for s, n in counts.items())
        row: dict[str, Any] = {
            C.VARIANT: variant,
            C.DATASET: group[C.DATASET].iloc[0],
            "seeds": len(group),
            C.STATUS: status,
        }
        for column in numeric:
            values = pd.to_numeric(group[column], errors="coerce")
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_summary(summary: pd.DataFrame, metrics: Iterable[str]) -> str:
    """A plain-text table of the summary: metric means ± std over seeds."""
    shown = [m for m in metrics if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any()]
    header = [C.VARIANT, "seeds", *shown, C.STATUS]
    lines = [header]
    for _, row in summary.iterrows():
        cells = [str(row[C.VARIANT]), str(row["seeds"])]
        for m in shown:
            mean, std = row[f"{m}_mean"], row[f"{m}_std"]
            cell = "nan" if pd.isna(mean) else f"{mean:.4g}"
            if not pd.isna(std):
                cell += f" ± {std:.2g}"
            cells.append(cell)
        cells.append(str(row[C.STATUS]))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def save_sample_grid(
    path: Path, images: torch.Tensor, per_row: int, row_labels: Sequence[str] = (), scale: int = 2
) -> None:
    """A PNG grid of uint8 images (N, C, H, W), ``per_row`` per row, each row optionally
    labelled on the left (one row per class for conditional variants)."""
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    grid = make_grid(images.float() / 255.0, nrow=per_row, padding=2, pad_value=1.0)
    array = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
    if row_labels:
        margin = 8 + 7 * max(len(label) for label in row_labels)
        canvas = Image.new("RGB", (picture.width + margin, picture.height), "white")
        canvas.paste(picture, (margin, 0))
        draw = ImageDraw.Draw(canvas)
        row_height = (images.shape[2] + 2) * scale
        for i, label in enumerate(row_labels):
            draw.text((4, i * row_height + row_height // 2 - 5), label, fill="black")
        picture = canvas
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
