"""fd_dinov2: DINOv2 features from a weights file the user gives, never a download.

No real DINOv2 checkpoint can be had here, so the files are made the way facebookresearch
publishes them (its key names, a 37x37 grid of position embeddings for 518 pixels, a mask token)
from randomly initialised timm ViTs. The reference every value is checked against is computed
in this file: torch-fidelity's own ``FeatureExtractorDinoV2`` (its resizing and normalisation)
around a network built here, whose position embeddings are interpolated by a transcription of
DINOv2's ``interpolate_pos_encoding``, and the Fréchet distance by scipy's ``sqrtm``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import socket
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import timm
import torch
import torch.nn.functional as F
from ganbench_plugins.metrics import compute_dinov2

import ganbench
from ganbench import columns as C
from ganbench.data import hold_out
from ganbench.errors import UsageError
from ganbench.evaluation import Evaluation, cache
from ganbench.evaluation import dinov2 as D
from ganbench.evaluation.fidelity import InceptionWeights
from ganbench.harness.rundir import CONFIG_JSON, METRICS_CSV

CPU = torch.device("cpu")
# A ViT of DINOv2's family small enough for a run on a CPU: width 128 (2 heads of 64, as DINOv2's),
# 2 blocks. The loader accepts only DINOv2's four widths, so the run test adds this one.
TINY_WIDTH = 128
TINY = D.Architecture("ViT-S/14 (width 128, 2 blocks: a test's)", "vit_small_patch14_dinov2", {"embed_dim": 128, "depth": 2, "num_heads": 2})  # fmt: skip
SMALL = D.ARCHITECTURES[384]
GIANT_MLP = ("w12", "w3")  # DINOv2's SwiGLU names, for timm's fc1/fc2 (only ViT-g has them)


# --- weights files as facebookresearch publishes them ----------------------------------------------


def random_vit(architecture: D.Architecture, registers: int = 0, seed: int = 0) -> torch.nn.Module:
    """A timm DINOv2 ViT for 518-pixel inputs (the official checkpoints' grid), every tensor
    random at a scale where the image matters: with timm's initialisation (LayerScale 1e-5,
    weights of std 0.02) the class token would come out nearly the same for every image."""
    torch.manual_seed(seed)
    name = architecture.timm_model.replace("_dinov2", "_reg4_dinov2") if registers else architecture.timm_model
    model = timm.create_model(name, pretrained=False, num_classes=0, img_size=518, **architecture.options)
    with torch.no_grad():
        for key, p in model.named_parameters():
            if key.endswith("gamma"):
                p.uniform_(0.5, 1.5)
            elif key.endswith("norm1.weight") or key.endswith("norm2.weight") or key == "norm.weight":
                p.normal_(1, 0.1)
            elif p.ndim == 1 or key in ("cls_token", "reg_token", "pos_embed"):
                p.normal_(0, 0.05)
            else:  # unit gain: std 1 / sqrt(fan in)
                p.normal_(0, p[0].numel() ** -0.5)
    return model.eval()


def official_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s tensors under facebookresearch's names: a mask token, ``register_tokens``,
    the class token's position first in ``pos_embed`` (timm folds it into the class token when
    the model has registers)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    width = state["cls_token"].shape[-1]
    if "reg_token" in state:
        state["register_tokens"] = state.pop("reg_token")
        class_position = torch.randn(1, 1, width) * 0.2
        state["cls_token"] = state["cls_token"] - class_position
        state["pos_embed"] = torch.cat((class_position, state["pos_embed"]), dim=1)
    state["mask_token"] = torch.zeros(1, width)
    return state


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


# --- the independent reference ----------------------------------------------------------------------


def dinov2_interpolate_pos_encoding(pos_embed: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """facebookresearch/dinov2's ``DinoVisionTransformer.interpolate_pos_encoding`` with
    torch.hub's settings (patch 14, interpolate_offset 0.1, no antialiasing), transcribed."""
    N = pos_embed.shape[1] - 1
    class_pos_embed, patch_pos_embed = pos_embed[:, 0], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    w0, h0 = w // 14, h // 14
    M = int(math.sqrt(N))
    if w0 == M and h0 == M:
        return pos_embed
    sx, sy = float(w0 + 0.1) / M, float(h0 + 0.1) / M
    patch_pos_embed = F.interpolate(
        patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2),
        mode="bicubic",
        antialias=False,
        scale_factor=(sx, sy),
    )
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def reference_network(official: dict[str, torch.Tensor], architecture: D.Architecture) -> torch.nn.Module:
    """What torch.hub's model computes at 224 pixels, for a file in facebookresearch's layout:
    timm's ViT for 224 pixels, its position embeddings interpolated as DINOv2 does, the names
    mapped here (not by ganbench's loader)."""
    state = dict(official)
    state.pop("mask_token")
    pos_embed = dinov2_interpolate_pos_encoding(state.pop("pos_embed"), 224, 224)
    registers = state.pop("register_tokens", None)
    if registers is None:
        state["pos_embed"] = pos_embed
        name = architecture.timm_model
    else:  # timm: registers and class token without positions, DINOv2's class position folded in
        state.update(reg_token=registers, cls_token=state["cls_token"] + pos_embed[:, :1], pos_embed=pos_embed[:, 1:])
        name = architecture.timm_model.replace("_dinov2", "_reg4_dinov2")
    state = {k.replace(".w12.", ".fc1.").replace(".w3.", ".fc2."): v for k, v in state.items()}
    model = timm.create_model(name, pretrained=False, num_classes=0, img_size=224, **architecture.options)
    model.load_state_dict(state, strict=True)
    return model.eval()


def reference_features(official: dict[str, torch.Tensor], architecture: D.Architecture, images: torch.Tensor):
    """torch-fidelity's FeatureExtractorDinoV2 (torch.hub's loader replaced by the reference
    network) on uint8 images repeated to 3 channels, in float64 for the statistics."""
    from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

    with mock.patch("torch.hub.load", return_value=reference_network(official, architecture)) as hub:
        extractor = FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    assert hub.call_count == 1
    with torch.no_grad():
        chunks = [extractor(chunk.expand(-1, 3, -1, -1))[0] for chunk in images.split(50)]
    return torch.cat(chunks).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) by scipy's matrix square root; and Tr Σa + Tr Σb."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    traces = float(np.trace(sigma_a) + np.trace(sigma_b))
    return float(((mu_a - mu_b) ** 2).sum() + traces - 2 * np.trace(root)), traces


# --- the features ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("registers", [0, 4])
def test_features_are_torch_fidelitys_extractor_on_the_same_vit_s(registers, fashion, tmp_path):
    """A ViT-S/14 file in facebookresearch's layout, and the same network as timm saves it
    (safetensors, timm's names): both are the reference's features."""
    model = random_vit(SMALL, registers)
    official = official_layout(model)
    path = save(official, tmp_path / f"dinov2_vits14{'_reg4' if registers else ''}_pretrain.pth")
    weights = D.check_weights(path)
    expected_name = "ViT-S/14" + (" with 4 registers" if registers else "")
    assert (weights.architecture, weights.layout, weights.features) == (expected_name, "dinov2", 384)
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    images = fashion.test_images[:6]
    ours = D.features(D.load_network(weights, CPU), images, CPU)
    reference = reference_features(official, SMALL, images)
    assert ours.shape == (6, 384) and ours.dtype == torch.float32
    assert ours.double().std(0).mean() > 0.05  # the images give different features: the comparison means something
    np.testing.assert_allclose(ours.double().numpy(), reference, rtol=1e-5, atol=1e-5)

    from safetensors.torch import save_file

    timm_file = tmp_path / "model.safetensors"  # timm's layout: its own 518-pixel model's state dict
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(timm_file))
    timm_weights = D.check_weights(timm_file)
    assert (timm_weights.architecture, timm_weights.layout) == (expected_name, "timm")
    again = D.features(D.load_network(timm_weights, CPU), images, CPU)
    if registers:  # the class position this file's official layout split off the class token
        np.testing.assert_allclose(again.numpy(), ours.numpy(), rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(again, ours)


def test_position_embeddings_follow_dinov2_not_timm():
    """The 37x37 grid to 16x16 as DINOv2 interpolates it; timm's own resampling differs."""
    from timm.layers import resample_abs_pos_embed

    pos_embed = torch.randn(1, 1 + 37 * 37, 8)
    ours = D.hub_pos_embed(pos_embed)
    assert torch.equal(ours, dinov2_interpolate_pos_encoding(pos_embed, 224, 224))
    assert torch.equal(ours[:, 0], pos_embed[:, 0])  # the class position as it was
    assert torch.equal(D.hub_pos_embed(ours), ours)  # a 16x16 grid is used as it is
    timms = resample_abs_pos_embed(pos_embed, new_size=(16, 16), num_prefix_tokens=1)
    assert (timms - ours).abs().max() > 0.05
    patches_only = D.hub_pos_embed(pos_embed[:, 1:])  # timm's layout with registers: no class position
    assert torch.equal(patches_only, ours[:, 1:])


# --- fd_dinov2 in a run ---------------------------------------------------------------------------


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    """``make(seed)``: a DINOv2-layout file of the test's tiny ViT (the loader told of its width)."""
    monkeypatch.setitem(D.ARCHITECTURES, TINY_WIDTH, TINY)

    def make(seed: int, name: str = "tiny") -> tuple[Path, dict[str, torch.Tensor]]:
        official = official_layout(random_vit(TINY, seed=seed))
        return save(official, tmp_path / "weights" / f"{name}-{seed}.pth"), official

    return make


@pytest.mark.slow
def test_fd_dinov2_in_a_run_is_finite_recorded_and_equals_an_independent_computation(
    run_kwargs, tiny_weights, fashion, cache_dir, tmp_path, tree_digest, monkeypatch
):
    path, official = tiny_weights(0)
    connections = []

    def offline(self, address):  # a hub download would connect somewhere: none may
        connections.append(address)
        raise OSError("the tests never touch the network")

    monkeypatch.setattr(socket.socket, "connect", offline)
    holdout = 200  # the real split: 200 held-out training images, not 10000 test images through a ViT
    result = ganbench.run(variants="dcgan", dinov2_weights=path, holdout=holdout, **run_kwargs)
    assert connections == []
    frame = pd.read_csv(result.run_dir / METRICS_CSV)
    final = frame[frame.eval_index == frame.eval_index.max()]
    assert final.fd_dinov2.notna().all() and (final.fd_dinov2 > 0).all()
    assert frame[frame.eval_index == 1].fd_dinov2.isna().all()  # final evaluation only
    real_row = frame[frame.variant == C.REAL_DATA].iloc[0]
    dcgan_row = final[final.variant == "dcgan"].iloc[0]
    assert dcgan_row.fd_dinov2 > 2 * real_row.fd_dinov2  # 20 steps of dcgan are far from the data; the data is not

    # The real-data row: the first eval_samples of the kept training images in the reference
    # rows' fixed order (seed 0), against the held-out ones.
    scored = hold_out(fashion, holdout)
    n = run_kwargs["eval_samples"]
    order = torch.randperm(scored.train_images.shape[0], generator=torch.Generator().manual_seed(0))[:n]
    samples, real = scored.train_images[order], scored.test_images
    fd, traces = frechet_distance(reference_features(official, TINY, samples), reference_features(official, TINY, real))
    # float32 features (the same network, batched otherwise) into float64 statistics: the
    # distance is a difference of traces, so its error is a fraction of them
    assert real_row.fd_dinov2 == pytest.approx(fd, rel=0, abs=1e-6 * traces)

    record = json.loads((result.run_dir / CONFIG_JSON).read_text())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["run"]["dinov2_weights"] == str(path)
    assert record["dinov2"]["sha256"] == sha and record["dinov2"]["path"] == str(path)
    assert record["dinov2"]["timm_model"] == "vit_small_patch14_dinov2" and record["dinov2"]["features"] == TINY_WIDTH
    assert record["columns"][C.FD_DINOV2]["direction"] == "lower"
    cached = cache_dir / "features" / f"fashion-mnist-holdout{holdout}-dinov2-{sha[:12]}.pt"
    stored = cache.safe_load(cached)  # the held-out images' statistics, cached for this file
    assert stored["identity"]["weights_sha256"] == sha and stored["tensors"]["mu"].shape == (TINY_WIDTH,)

    # Resumed with another file: refused before anything is read or written.
    before = tree_digest(result.run_dir)
    other, _ = tiny_weights(1)
    with pytest.raises(
        UsageError, match=rf"was scored with DINOv2 weights sha256 {sha[:12]}\.\.\. \(now sha256 "
    ) as info:
        ganbench.run(resume=result.run_dir, dinov2_weights=other)
    assert "\n" not in str(info.value) and tree_digest(result.run_dir) == before
    # A run scored without DINOv2 weights is not continued with them either.
    without = tmp_path / "without"
    shutil.copytree(result.run_dir, without)
    changed = {**record, "dinov2": None, "run": {**record["run"], "dinov2_weights": None, "out": str(without)}}
    (without / CONFIG_JSON).write_text(json.dumps(changed))
    with pytest.raises(
        UsageError, match=r"was scored with no DINOv2 weights \(now sha256 .*resume with no --dinov2-weights"
    ):
        ganbench.run(resume=without, dinov2_weights=path)
    # The same file elsewhere: where it is may change, what it is may not.
    moved = shutil.copy(path, tmp_path / "moved.pth")
    again = ganbench.run(resume=result.run_dir, dinov2_weights=moved)
    assert json.loads((again.run_dir / CONFIG_JSON).read_text())["dinov2"] == {**record["dinov2"], "path": str(moved)}
    pd.testing.assert_frame_equal(pd.read_csv(again.run_dir / METRICS_CSV), frame)


def test_without_weights_fd_dinov2_is_nan_with_the_reason(classifier, fashion, cache_dir):
    evaluation = Evaluation(
        "x", "generation", fashion.test_images[:60], None, fashion, classifier, CPU, cache_dir, True,
        lambda: InceptionWeights(None, "not needed"),
    )  # fmt: skip
    out = compute_dinov2(evaluation)
    assert math.isnan(out.values[C.FD_DINOV2]) and out.notes[C.FD_DINOV2] == D.NOT_GIVEN
    assert "--dinov2-weights" in D.NOT_GIVEN and "never downloaded" in D.NOT_GIVEN


def test_a_file_changed_after_it_was_checked_is_not_used(tiny_weights):
    path, _ = tiny_weights(0)
    weights = D.check_weights(path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match=r"changed since the run was planned \(sha256 "):
        D.load_network(weights, CPU)


# --- bad weights: one line, exit status 2, before anything is trained ------------------------------


class Planted:
    """Unpickling it creates ``marker``: what a crafted weights file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _bad_file(kind: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return folder / "dinov2_vits14_pretrain.pth"
    if kind == "truncated":
        good = save(official_layout(random_vit(TINY)), folder / "good.pth").read_bytes()
        (folder / "truncated.pth").write_bytes(good[: len(good) // 2])
        return folder / "truncated.pth"
    if kind == "planted":
        state = {"cls_token": torch.zeros(1, 1, 384), "pos_embed": Planted(folder / "ran")}
        return save(state, folder / "planted.pth")
    if kind == "not a state dict":
        return save(torch.zeros(3), folder / "tensor.pth")  # type: ignore[arg-type]
    if kind == "other width":  # the test's tiny ViT: not one of DINOv2's
        return save(official_layout(random_vit(TINY)), folder / "tiny.pth")
    if kind == "other depth":  # a ViT-S/14 one block short
        short = D.Architecture("ViT-S/14 with 11 blocks", "vit_small_patch14_dinov2", {"depth": 11})
        return save(official_layout(random_vit(short)), folder / "eleven.pth")
    if kind == "other patch":  # DINO (v1)'s ViT-S/16 shapes, which timm would quietly resample
        torch.manual_seed(0)
        state = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=0).state_dict()
        return save(state, folder / "dino_deitsmall16_pretrain.pth")
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "is not a file; accepted: a DINOv2 ViT/14 weights file"),
        ("truncated", "cannot be loaded safely (RuntimeError: PytorchStreamReader failed reading zip archive"),
        ("planted", "cannot be loaded safely (UnpicklingError: Unsupported global: GLOBAL io.open was not an allowed"),
        ("not a state dict", "is not a state dict (names to tensors); accepted: facebookresearch's"),
        ("other width", "is not a DINOv2 ViT/14 state dict (embedding width 128; DINOv2's are 384 (ViT-S/14)"),
        ("other depth", "is not a DINOv2 ViT-S/14 state dict (it lacks blocks.11.attn.proj.bias and 13 more)"),
        ("other patch", "(patch embedding (384, 3, 16, 16), not (384, 3, 14, 14)); accepted: facebookresearch's"),
    ],
)
def test_bad_weights_are_one_line_exit_2_before_anything_is_trained(kind, message, tmp_path, cache_dir, ganbench_cli):
    path = _bad_file(kind, tmp_path / "files")
    if kind == "planted":  # the threat is real: loaded unsafely, this file runs code
        torch.load(path, weights_only=False)
        assert (tmp_path / "files" / "ran").exists()
        (tmp_path / "files" / "ran").unlink()
    out = ganbench_cli(
        "run", "--variants", "dcgan", "--budget", "2steps", "--device", "cpu", "--no-download", "--no-probes",
        "--cache-dir", cache_dir, "--out", tmp_path / "run", "--dinov2-weights", path, cwd=tmp_path,
    )  # fmt: skip
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith(f"ganbench: error: dinov2_weights {path} "), out.stderr
    assert message in lines[0] and "accepted: " in lines[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "results").exists()
    assert not (tmp_path / "files" / "ran").exists()
