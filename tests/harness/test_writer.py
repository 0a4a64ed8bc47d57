import math

import pandas as pd
import pytest
import torch
from PIL import Image

from ganbench import columns as C
from ganbench.harness.writer import ResultsWriter, final_rows, format_summary, save_sample_grid


def row(variant, seed, eval_index, fid, status=C.STATUS_OK):
    return {C.VARIANT: variant, C.DATASET: "d", C.SEED: seed, C.EVAL_INDEX: eval_index, C.STEP: eval_index * 10,
            C.IMAGES_SEEN: eval_index * 640, C.TRAIN_SECONDS: 1.0, C.CRITIC_STEPS: 1, C.STATUS: status,
            C.FID_DOMAIN: fid, C.NOTE: ""}  # fmt: skip


def test_summary_is_mean_and_std_of_final_evaluations_over_seeds(tmp_path):
    writer = ResultsWriter(tmp_path, [C.FID_DOMAIN])
    for r in [row("a", 0, 1, 100.0), row("a", 0, 2, 10.0), row("a", 1, 1, 90.0), row("a", 1, 2, 20.0),
              row("b", 0, 1, 50.0), row("b", 1, 1, math.nan, C.STATUS_DIVERGED)]:  # fmt: skip
        writer.add_row(r, {}, ())
    frame, summary = writer.finish()
    assert list(final_rows(frame)[C.FID_DOMAIN].fillna(-1)) == [10.0, 20.0, 50.0, -1]
    a = summary.set_index(C.VARIANT).loc["a"]
    assert a.fid_domain_mean == 15.0 and a.fid_domain_std == pytest.approx(math.sqrt(50)) and a.seeds == 2
    b = summary.set_index(C.VARIANT).loc["b"]
    assert b.status == "1 ok, 1 diverged" and b.fid_domain_mean == 50.0 and math.isnan(b.fid_domain_std)
    assert pd.read_csv(tmp_path / "summary.csv").shape == summary.shape
    text = format_summary(summary, [C.FID_DOMAIN])
    assert "15 ± 7.1" in text and "1 ok, 1 diverged" in text


def test_tables_are_rewritten_after_every_row(tmp_path):
    writer = ResultsWriter(tmp_path, [C.FID_DOMAIN, "extra_metric"])
    writer.add_row(row("a", 0, 1, 5.0), {C.CLASS_CONSISTENCY: [0.5, 1.0]}, ("x", "y"))
    writer.flush()
    frame = pd.read_csv(tmp_path / "metrics.csv")
    assert len(frame) == 1 and "extra_metric" in frame.columns and frame.columns[-1] == C.NOTE
    per_class = pd.read_csv(tmp_path / "per_class.csv")
    assert per_class[C.CLASS_NAME].tolist() == ["x", "y"] and per_class[C.CLASS_CONSISTENCY].tolist() == [0.5, 1.0]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_sample_grid_has_one_labelled_row_per_class(tmp_path):
    images = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8)
    save_sample_grid(tmp_path / "g.png", images, per_row=10, row_labels=("a", "b", "c"), scale=2)
    picture = Image.open(tmp_path / "g.png")
    grid_height = 3 * (28 + 2) + 2
    assert picture.height == grid_height * 2 and picture.width > (10 * 30 + 2) * 2  # plus the label margin
    save_sample_grid(tmp_path / "u.png", images[:20], per_row=10, scale=1)
    assert Image.open(tmp_path / "u.png").size == (10 * 30 + 2, 2 * 30 + 2)
