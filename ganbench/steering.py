"""Steering a frozen generator's latents by gradient ascent on a classifier, and scoring the
result with another classifier (the judge) and with the pixels.

One steering run moves every latent of a batch independently: ``z <- z + step_size * grad_z
score(z)`` for ``steps`` steps, where ``score`` is the steering classifier's output for the
target, as in the reference method: the logit of an attribute (for a class, its log-softmax,
so that raising one class means lowering the others), minus, when penalised, ``penalty *
||others(z) - others(z0)||_2``: the L2 change of every other attribute's logit since the start.
Logits, not probabilities: a sigmoid's gradient vanishes where the classifier is sure, which
would leave the latents of a confident generator where they are. The gradient is that of the
batch *sum*, so a latent's path does not depend on how many latents are steered beside it (the
batch mean would shrink each step by the batch size). The rows of every (mode, target) are
stacked and steered together, CHUNK rows per generator pass. Scores are probabilities of the
judge (:func:`judged`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ganbench.data import to_float, to_uint8
from ganbench.probes import Judge

ATTRIBUTE, CLASS = "attribute", "class"
PLAIN, PENALISED = "plain", "penalised"
MODES = (PLAIN, PENALISED)
CHUNK = 512  # rows steered at once: bounds the autograd graph's memory
SCORES = ("success", "gain", "leakage", "disentanglement", "verified_gain", "latent_distance")


@dataclass(frozen=True)
class Target:
    """What a latent is steered toward: attribute ``index`` present, or class ``index``."""

    name: str
    kind: str  # ATTRIBUTE or CLASS
    index: int


def probabilities(classifier: Judge, images: torch.Tensor, attributes: Sequence[str]) -> torch.Tensor:
    """(N, A + K): sigmoid probabilities of ``attributes`` (in that order, looked up by name in
    the classifier's attribute heads), then the softmax over its class logits. Differentiable.
    A classifier with ``logits(images) -> (class, attribute logits)`` (the built-in judges) is
    run once, not once per head."""
    class_logits, attribute_logits = _logits(classifier, images)
    columns = [classifier.attribute_names.index(name) for name in attributes]
    return torch.cat([torch.sigmoid(attribute_logits[:, columns]), torch.softmax(class_logits, 1)], 1)


def outputs(classifier: Judge, images: torch.Tensor, attributes: Sequence[str]) -> torch.Tensor:
    """(N, A + K): the logits of ``attributes`` (in that order), then the log-softmax of the
    class logits: what steering ascends. Differentiable."""
    class_logits, attribute_logits = _logits(classifier, images)
    columns = [classifier.attribute_names.index(name) for name in attributes]
    return torch.cat([attribute_logits[:, columns], torch.log_softmax(class_logits, 1)], 1)


def _logits(classifier: Judge, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if callable(getattr(classifier, "logits", None)):  # the built-in judges: one pass for both heads
        return classifier.logits(images)
    return classifier.class_logits(images), classifier.attribute_logits(images)


@torch.no_grad()
def judged(judge: Judge, images: torch.Tensor, attributes: Sequence[str]) -> torch.Tensor:
    """:func:`probabilities` of the judge on the images as saved (rounded to uint8), on the CPU."""
    return torch.cat(
        [probabilities(judge, to_float(to_uint8(c)), attributes).float().cpu() for c in images.split(CHUNK)]
    )


@dataclass
class Steered:
    """A steering run over rows (mode, target, latent), in that order."""

    z0: torch.Tensor  # (N, ...) the latents, shared by every target and mode
    z: torch.Tensor  # (R, ...) the steered latents, R = 2 * len(targets) * N
    images0: torch.Tensor  # (N, C, H, W) float images at z0
    images: torch.Tensor  # (R, C, H, W) float images after the last step
    frames: torch.Tensor  # (steps + 1, R_keep, C, H, W) images at every step of the kept rows
    keep: torch.Tensor  # (R,) bool: the rows in frames (the first ``strip`` latents of each target and mode)


def steer(
    generate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    steering: Judge,
    attributes: Sequence[str],
    targets: Sequence[Target],
    z0: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    steps: int,
    step_size: float,
    penalty: float,
    strip: int,
) -> Steered:
    """Steer ``z0`` (with ``labels``, row by row; None when unconditional) toward every target,
    plain and penalised.

    ``generate(z, labels)`` must be differentiable in z and treat rows independently (networks
    in eval mode). For an attribute target the penalty covers the other attributes, for a class
    target all attributes."""
    n, a = len(z0), len(attributes)
    t = len(targets)
    rows = 2 * t * n
    latent = torch.arange(n, device=z0.device).repeat(2 * t)
    target = torch.arange(t, device=z0.device).repeat_interleave(n).repeat(2)
    column = torch.tensor([tg.index + (a if tg.kind == CLASS else 0) for tg in targets], device=z0.device)[target]
    weight = torch.cat([torch.zeros(t * n), torch.full((t * n,), float(penalty))]).to(z0.device)
    others = torch.ones(t, a, device=z0.device)
    for i, tg in enumerate(targets):
        if tg.kind == ATTRIBUTE:
            others[i, tg.index] = 0
    others = others[target]
    keep = latent < strip

    z_out, x_out, frames = [], [], []
    for lo in range(0, rows, CHUNK):
        part = slice(lo, min(lo + CHUNK, rows))
        z = z0[latent[part]].detach().clone()
        y = None if labels is None else labels[latent[part]]
        reference = None
        chunk_frames = []
        for _ in range(steps):
            z.requires_grad_(True)
            with torch.enable_grad():
                x = generate(z, y)
                out = outputs(steering, x, attributes)
                if reference is None:
                    reference = out[:, :a].detach()
                drift = torch.linalg.vector_norm((out[:, :a] - reference) * others[part], dim=1)  # gradient 0 at 0
                score = out.gather(1, column[part, None]).squeeze(1) - weight[part] * drift
                (grad,) = torch.autograd.grad(score.sum(), z)
            chunk_frames.append(x.detach()[keep[part]])
            z = z.detach() + step_size * grad
        with torch.no_grad():
            x = generate(z, y)
        chunk_frames.append(x[keep[part]])
        z_out.append(z)
        x_out.append(x)
        frames.append(torch.stack(chunk_frames))
    with torch.no_grad():
        images0 = torch.cat(
            [
                generate(c, None if labels is None else labels[i : i + CHUNK])
                for i, c in zip(range(0, n, CHUNK), z0.split(CHUNK))
            ]
        )
    return Steered(z0, torch.cat(z_out), images0, torch.cat(x_out), torch.cat(frames, 1), keep)


def disentanglement(gain: float, leakage: float) -> float:
    """gain / (gain + leakage) in [0, 1]; 0 when the target did not rise (gain <= 0)."""
    return gain / (gain + leakage) if gain > 0 else 0.0


def score_rows(
    steered: Steered,
    targets: Sequence[Target],
    before: torch.Tensor,
    after: torch.Tensor,
    num_attributes: int,
    measured_before: torch.Tensor | None,
    measured_after: torch.Tensor | None,
) -> list[dict]:
    """One row per (target, mode): the six scores and the judge's fraction present before and
    after. ``before``/``after``: the judge's :func:`judged` probabilities at z0 (N rows) and
    after steering (R rows); ``measured_*``: bool (N, A) / (R, A) attributes measured from the
    pixels, or None for annotated attributes."""
    n, a = len(steered.z0), num_attributes
    dim = steered.z0[0].numel()
    distance = (steered.z - steered.z0.repeat(2 * len(targets), *[1] * (steered.z0.dim() - 1))).flatten(1)
    distance = (torch.linalg.vector_norm(distance, dim=1) / math.sqrt(dim)).cpu()
    out = []
    for m, mode in enumerate(MODES):
        for i, tg in enumerate(targets):
            part = slice((m * len(targets) + i) * n, (m * len(targets) + i + 1) * n)
            p0, p1 = before, after[part]
            attrs0, attrs1, cls0, cls1 = p0[:, :a], p1[:, :a], p0[:, a:], p1[:, a:]
            if tg.kind == ATTRIBUTE:
                present0, present1 = p0[:, tg.index] > 0.5, p1[:, tg.index] > 0.5
                gain = (p1[:, tg.index] - p0[:, tg.index]).mean().item()
                others = [j for j in range(a) if j != tg.index]
                leak = torch.linalg.vector_norm(attrs1[:, others] - attrs0[:, others], dim=1)
                leak = leak + 0.5 * (cls1 - cls0).abs().sum(1)  # total variation of the class distribution
            else:  # the class distribution is the target: leakage is the attributes' change only
                present0, present1 = cls0.argmax(1) == tg.index, cls1.argmax(1) == tg.index
                gain = (cls1[:, tg.index] - cls0[:, tg.index]).mean().item()
                leak = torch.linalg.vector_norm(attrs1 - attrs0, dim=1)
            leakage = leak.mean().item()
            verified = math.nan
            if tg.kind == ATTRIBUTE and measured_before is not None and measured_after is not None:
                verified = (
                    measured_after[part, tg.index].double().mean() - measured_before[:, tg.index].double().mean()
                ).item()
            out.append(
                {
                    "target": tg.name,
                    "kind": tg.kind,
                    "mode": mode,
                    "success": present1.double().mean().item(),
                    "gain": gain,
                    "leakage": leakage,
                    "disentanglement": disentanglement(gain, leakage),
                    "verified_gain": verified,
                    "latent_distance": distance[part].mean().item(),
                    "present_before": present0.double().mean().item(),
                    "present_after": present1.double().mean().item(),
                }
            )
    return out
