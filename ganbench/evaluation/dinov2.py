"""DINOv2's features for ``fd_dinov2``: a ViT/14 that timm builds from a weights file the user
gives (``--dinov2-weights FILE``). Nothing is ever downloaded.

Why timm (the optional extra ``ganbench[dinov2]``): torch-fidelity's ``FeatureExtractorDinoV2``
gets its network only through ``torch.hub`` (facebookresearch/dinov2's code and weights from
the network, at run time) and refuses a weights path. timm, a well-kept package, has the same
architectures (``vit_{small,base,large,giant}_patch14[_reg4]_dinov2``) and converts the official
checkpoints itself (``checkpoint_filter_fn``), so the file is all that is needed.

The features are what torch-fidelity's extractor computes with torch.hub's model:

- uint8 images, grayscale repeated to 3 channels;
- resized to 224x224 by torch-fidelity's TF1-compatible bilinear interpolation;
- normalised with ImageNet's mean and standard deviation (of 0-255 values);
- the class token after the ViT's final LayerNorm (what torch.hub's ``forward`` returns);
- with the checkpoint's position embeddings (a 37x37 grid: 518-pixel training) interpolated
  to 16x16 as DINOv2's ``interpolate_pos_encoding`` does it (bicubic, scale factor
  (16 + 0.1) / 37, no antialiasing), once when the file is loaded. timm's own resampling
  (antialiased, by output size) would give other embeddings.

The file is read with ``torch.load(weights_only=True)`` or as safetensors: never unpickled.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

INPUT_SIZE = 224  # torch-fidelity's FeatureExtractorDinoV2.INPUT_IMAGE_SIZE
PATCH_SIZE = 14
GRID = INPUT_SIZE // PATCH_SIZE
# DINOv2's interpolate_pos_encoding: torch.hub's models are built with offset 0.1, no antialiasing
HUB_INTERPOLATE_OFFSET = 0.1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BATCH = 64
REGISTERS = 4  # the official models with registers have four
EXTRA = "pip install 'ganbench[dinov2]'"
NOT_GIVEN = "no --dinov2-weights FILE given (DINOv2 weights are never downloaded)"
ACCEPTED = (
    "facebookresearch's dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth or timm's "
    "vit_{small,base,large,giant}_patch14[_reg4]_dinov2 weights (.pth or .safetensors)"
)


@dataclass(frozen=True)
class Architecture:
    """A DINOv2 ViT/14: its name, timm's model, and keyword arguments for timm (none for the
    official ones)."""

    name: str
    timm_model: str
    options: Mapping[str, Any] = field(default_factory=dict)


# By embedding width, the one shape every layout has (the class token's): the model a file is for.
ARCHITECTURES: dict[int, Architecture] = {
    384: Architecture("ViT-S/14", "vit_small_patch14_dinov2"),
    768: Architecture("ViT-B/14", "vit_base_patch14_dinov2"),
    1024: Architecture("ViT-L/14", "vit_large_patch14_dinov2"),
    1536: Architecture("ViT-g/14", "vit_giant_patch14_dinov2"),
}


@dataclass(frozen=True)
class Dinov2Weights:
    """A checked DINOv2 weights file, or why there is none (``path`` None, ``reason``)."""

    path: Path | None
    reason: str = ""
    sha256: str = ""
    architecture: str = ""  # "ViT-S/14", "ViT-S/14 with 4 registers"
    timm_model: str = ""
    layout: str = ""  # "dinov2" (facebookresearch's key names) or "timm"
    features: int = 0

    def record(self) -> dict[str, Any]:
        """What config.json's ``dinov2`` records."""
        import timm

        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "architecture": self.architecture,
            "timm_model": self.timm_model,
            "layout": self.layout,
            "features": self.features,
            "timm": timm.__version__,
        }


class WeightsRefused(ValueError):
    """A weights file that is not one of the accepted ones; the message is one line."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _timm() -> Any:
    try:
        import timm
        from timm.models import vision_transformer
    except ImportError:
        raise WeightsRefused(f"dinov2_weights needs timm, which is not installed: {EXTRA}") from None
    return timm, vision_transformer


def _is_safetensors(path: Path) -> bool:
    """safetensors' layout: an 8-byte little-endian header length, then that much JSON."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + struct.unpack("<Q", head[:8])[0] <= path.stat().st_size


def _read(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors by name; torch files are memory-mapped (a ViT-g is 4.5 GB)."""
    from ganbench.evaluation.cache import short_reason

    refused = f"dinov2_weights {path}"
    if _is_safetensors(path):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsRefused(
                f"{refused} is a safetensors file, and safetensors is not installed: {EXTRA}"
            ) from None
        try:
            state: Any = load_file(str(path))
        except Exception as exc:
            raise WeightsRefused(
                f"{refused} cannot be read as safetensors ({short_reason(exc)}); accepted: {ACCEPTED}"
            ) from None
    else:
        try:
            with warnings.catch_warnings():  # a foreign pickle's protocol: it is refused anyway
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        except Exception as exc:
            reason = short_reason(exc)
            reason = reason if "weights_only" not in reason else type(exc).__name__  # never pass that advice on
            raise WeightsRefused(f"{refused} cannot be loaded safely ({reason}); accepted: {ACCEPTED}") from None
    for key in ("model", "state_dict"):  # wrappers timm's checkpoint_filter_fn unwraps too
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise WeightsRefused(f"{refused} is not a state dict (names to tensors); accepted: {ACCEPTED}")
    return state


def _identify(state: Mapping[str, torch.Tensor], path: Path) -> tuple[Architecture, int, str]:
    """The architecture (by the class token's width), the number of registers and the layout."""
    refused = f"dinov2_weights {path} is not a DINOv2 ViT/14 state dict"
    cls = state.get("cls_token")
    if cls is None or cls.ndim != 3 or tuple(cls.shape[:2]) != (1, 1):
        raise WeightsRefused(f"{refused} (no cls_token of shape (1, 1, width)); accepted: {ACCEPTED}")
    width = int(cls.shape[2])
    if width not in ARCHITECTURES:
        widths = ", ".join(f"{w} ({a.name})" for w, a in ARCHITECTURES.items())
        raise WeightsRefused(f"{refused} (embedding width {width}; DINOv2's are {widths}); accepted: {ACCEPTED}")
    layout = "dinov2" if "mask_token" in state else "timm"
    tokens = state.get("register_tokens" if layout == "dinov2" else "reg_token")
    registers = 0 if tokens is None else int(tokens.shape[1]) if tokens.ndim == 3 else -1
    if registers not in (0, REGISTERS):
        raise WeightsRefused(f"{refused} ({registers} register tokens, not 0 or {REGISTERS}); accepted: {ACCEPTED}")
    patch = state.get("patch_embed.proj.weight")
    if patch is None or tuple(patch.shape) != (width, 3, PATCH_SIZE, PATCH_SIZE):
        shape = "none" if patch is None else tuple(patch.shape)
        raise WeightsRefused(
            f"{refused} (patch embedding {shape}, not {(width, 3, PATCH_SIZE, PATCH_SIZE)}); accepted: {ACCEPTED}"
        )
    return ARCHITECTURES[width], registers, layout


def _describe(architecture: Architecture, registers: int) -> tuple[str, str]:
    """(name, timm model) of the architecture, with registers or without."""
    if not registers:
        return architecture.name, architecture.timm_model
    return f"{architecture.name} with {registers} registers", architecture.timm_model.replace("_dinov2", "_reg4_dinov2")


def _build(architecture: Architecture, registers: int, device: str | torch.device) -> torch.nn.Module:
    """timm's model for 224-pixel inputs, without a head (its forward: the normed class token)."""
    timm, _ = _timm()
    _, model_name = _describe(architecture, registers)
    with torch.device(device):
        return timm.create_model(
            model_name, pretrained=False, num_classes=0, img_size=INPUT_SIZE, **architecture.options
        )


def hub_pos_embed(pos_embed: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """``pos_embed`` (1, prefix + M*M, width; prefix 0 or 1, the class token's) for a
    ``grid`` x ``grid`` patch grid, as DINOv2's ``interpolate_pos_encoding`` computes it."""
    n = pos_embed.shape[1]
    prefix = next((p for p in (0, 1) if n - p > 0 and math.isqrt(n - p) ** 2 == n - p), None)
    if pos_embed.ndim != 3 or prefix is None:
        raise ValueError(f"pos_embed {tuple(pos_embed.shape)} is not a square grid of positions")
    m = math.isqrt(n - prefix)
    if m == grid:  # DINOv2 uses its embeddings as they are then
        return pos_embed
    width = pos_embed.shape[2]
    patches = pos_embed[:, prefix:].float().reshape(1, m, m, width).permute(0, 3, 1, 2)
    scale = float(grid + HUB_INTERPOLATE_OFFSET) / m
    patches = F.interpolate(patches, mode="bicubic", antialias=False, scale_factor=(scale, scale))
    if tuple(patches.shape[-2:]) != (grid, grid):
        raise ValueError(f"pos_embed of a {m}x{m} grid does not interpolate to {grid}x{grid}")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, width)
    return torch.cat((pos_embed[:, :prefix].float(), patches), dim=1).to(pos_embed.dtype)


def _convert(
    state: Mapping[str, torch.Tensor], model: torch.nn.Module, path: Path, name: str
) -> dict[str, torch.Tensor]:
    """The file's tensors as ``model``'s state dict (float32): the position embeddings
    interpolated as DINOv2 does, then timm's own conversion; every name and shape must match."""
    _, vision_transformer = _timm()
    state = dict(state)
    refused = f"dinov2_weights {path} is not a DINOv2 {name} state dict"
    if "pos_embed" not in state:
        raise WeightsRefused(f"{refused} (no pos_embed); accepted: {ACCEPTED}")
    try:
        state["pos_embed"] = hub_pos_embed(state["pos_embed"])
    except ValueError as exc:
        raise WeightsRefused(f"{refused} ({exc}); accepted: {ACCEPTED}") from None
    converted = vision_transformer.checkpoint_filter_fn(state, model)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in converted]
    unexpected = [k for k in converted if k not in expected]
    wrong = [k for k in expected if k in converted and tuple(converted[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"lacks {_some(missing)}")
    if unexpected:
        problems.append(f"has no place for {_some(unexpected)}")
    if wrong:
        k = wrong[0]
        more = f" and {len(wrong) - 1} more" if len(wrong) > 1 else ""
        problems.append(f"{k} is {tuple(converted[k].shape)}, not {expected[k]}{more}")
    if problems:
        raise WeightsRefused(f"{refused} (it {'; '.join(problems)}); accepted: {ACCEPTED}")
    return {k: v.float() for k, v in converted.items()}


def _some(keys: list[str]) -> str:
    """The first key of a list in its natural order (blocks.2 before blocks.10), and a count."""
    first = min(keys, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)])
    return first + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")


def check_weights(path: Path | str) -> Dinov2Weights:
    """The weights file checked without building the network (timm's model on the meta
    device gives the names and shapes): WeightsRefused, one line, when it is not an accepted
    DINOv2 file. What ``--dinov2-weights`` is checked with when the run is planned."""
    path = Path(path)
    if not path.is_file():
        raise WeightsRefused(f"dinov2_weights {path} is not a file; accepted: {ACCEPTED}")
    _timm()
    state = _read(path)
    architecture, registers, layout = _identify(state, path)
    name, model_name = _describe(architecture, registers)
    _convert(state, _build(architecture, registers, "meta"), path, name)
    width = int(state["cls_token"].shape[2])
    return Dinov2Weights(path, "", sha256(path), name, model_name, layout, width)


def load_network(weights: Dinov2Weights, device: torch.device) -> torch.nn.Module:
    """The network of a checked weights file, in eval mode on ``device``; ValueError if the
    file changed since it was checked."""
    if weights.path is None:
        raise ValueError(weights.reason or NOT_GIVEN)
    path = Path(weights.path)
    digest = sha256(path)
    if digest != weights.sha256:
        raise ValueError(
            f"dinov2_weights {path} changed since the run was planned (sha256 {digest[:12]}..., "
            f"planned {weights.sha256[:12]}...)"
        )
    state = _read(path)
    architecture, registers, _ = _identify(state, path)
    name, _ = _describe(architecture, registers)
    model = _build(architecture, registers, "meta")  # no random initialisation: every tensor comes from the file
    model.load_state_dict(_convert(state, model, path, name), strict=True, assign=True)
    left = [k for k, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"timm's {weights.timm_model} has tensors no state dict sets ({', '.join(left[:3])})")
    return model.eval().requires_grad_(False).to(device)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) to the network's float32 input (N, 3, 224, 224), as
    torch-fidelity's FeatureExtractorDinoV2 prepares it."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
    from torchvision.transforms.functional import normalize

    x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    x = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
    return normalize(x, [255 * m for m in IMAGENET_MEAN], [255 * s for s in IMAGENET_STD])


@torch.no_grad()
def features(network: torch.nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The class-token features (N, width) of uint8 images, float32 on the CPU."""
    chunks = [network(preprocess(chunk.to(device))).float().cpu() for chunk in images.split(BATCH)]
    return torch.cat(chunks)
