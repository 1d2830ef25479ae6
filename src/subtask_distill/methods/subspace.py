"""Fitting SubDistill's teacher subspaces (the SubDistill paper, arXiv 2601.05913).

Per paired teacher layer, on the training split (contaminated as for
training, no augmentation):
1. activations a (channel vectors at random spatial positions) and contexts
   c = d(z1 - z2)/da, z1 and z2 the largest and second largest subtask logits;
2. M = S_ac + S_ac^T + 2 sqrt(tr S_c / tr S_a) S_a + 2 sqrt(tr S_a / tr S_c) S_c
   with a centred by its mean (``kind="subdistill"``), or M = S_a (``"pca"``);
3. U = the top-K eigenvectors of M, each signed so that most centred
   activations project positively on it, and s_k = diag(U^T S_a U).
Moments are accumulated in float64 over batches; a second pass with the same
positions counts signs, so nothing of size (images x positions x channels) is
held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch

from ..models.taps import FeatureTaps, as_feature_map

SUBSPACE_KINDS = ("subdistill", "pca")


@dataclass
class LayerSubspace:
    basis: torch.Tensor  # C_t x K, orthonormal columns (U)
    mean: torch.Tensor  # C_t (mu_T)
    variance: torch.Tensor  # K, s_k = diag(U^T S_a U)
    eigenvalues: torch.Tensor  # K, of M
    total_variance: float  # tr S_a

    @property
    def captured(self) -> float:
        """Share of the activations' variance inside the subspace."""
        return float(self.variance.sum()) / self.total_variance if self.total_variance > 0 else float("nan")

    def to_dict(self) -> dict:
        return {
            "basis": self.basis,
            "mean": self.mean,
            "variance": self.variance,
            "eigenvalues": self.eigenvalues,
            "total_variance": self.total_variance,
        }

    def as_float(self) -> "LayerSubspace":
        return LayerSubspace(
            self.basis.float(), self.mean.float(), self.variance.float(), self.eigenvalues.float(), self.total_variance
        )


class Moments:
    """Running first and second moments of paired samples (a, c), in float64."""

    def __init__(self, channels: int):
        self.n = 0
        self.sum_a = torch.zeros(channels, dtype=torch.float64)
        self.sum_c = torch.zeros(channels, dtype=torch.float64)
        self.sum_aa = torch.zeros(channels, channels, dtype=torch.float64)
        self.sum_cc = torch.zeros(channels, channels, dtype=torch.float64)
        self.sum_ac = torch.zeros(channels, channels, dtype=torch.float64)

    def add(self, a: torch.Tensor, c: torch.Tensor) -> None:
        a, c = a.double().cpu(), c.double().cpu()
        self.n += len(a)
        self.sum_a += a.sum(0)
        self.sum_c += c.sum(0)
        self.sum_aa += a.T @ a
        self.sum_cc += c.T @ c
        self.sum_ac += a.T @ c

    def covariances(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mu, S_a, S_c, S_ac) with a centred: S_a = E[(a-mu)(a-mu)^T], S_ac = E[(a-mu) c^T]."""
        if self.n == 0:
            raise ValueError("no samples were collected")
        mu = self.sum_a / self.n
        s_a = self.sum_aa / self.n - torch.outer(mu, mu)
        s_c = self.sum_cc / self.n
        s_ac = self.sum_ac / self.n - torch.outer(mu, self.sum_c / self.n)
        return mu, s_a, s_c, s_ac


def subspace_matrix(s_a: torch.Tensor, s_c: torch.Tensor, s_ac: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "pca":
        return s_a
    if kind != "subdistill":
        raise ValueError(f"unknown subspace kind {kind!r}; expected one of {SUBSPACE_KINDS}")
    tr_a, tr_c = torch.trace(s_a), torch.trace(s_c)
    if tr_a <= 0 or tr_c <= 0:
        raise ValueError("activations or contexts have zero variance; cannot fit a subspace")
    return s_ac + s_ac.T + 2 * torch.sqrt(tr_c / tr_a) * s_a + 2 * torch.sqrt(tr_a / tr_c) * s_c


def top_eigenvectors(matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors as columns) of a symmetric matrix, largest first."""
    if k > matrix.shape[0]:
        raise ValueError(f"cannot take {k} directions from a {matrix.shape[0]}-channel teacher layer")
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    order = torch.argsort(values, descending=True)[:k]
    return values[order], vectors[:, order]


def position_index(feature: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random positions per image of an N x C x H x W map, without replacement.

    A map with fewer positions gives all of them. Shape N x count.
    """
    n, _, h, w = feature.shape
    count = min(count, h * w)
    return torch.rand(n, h * w, generator=generator).argsort(dim=1)[:, :count].to(feature.device)


def gather_positions(feature: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The channel vectors at ``index`` (from ``position_index``): (N * count) x C."""
    n, channels = feature.shape[:2]
    count = index.shape[1]
    picked = feature.flatten(2).gather(2, index.unsqueeze(1).expand(n, channels, count))
    return picked.permute(0, 2, 1).reshape(n * count, channels)


def activations_and_contexts(taps: FeatureTaps, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Feature maps of the tapped layers and the gradient of (top-1 - top-2 logit) w.r.t. them."""
    x = x.detach().requires_grad_(True)  # so frozen-teacher activations carry gradients
    with torch.enable_grad():
        logits, raw = taps.raw(x)
        for output in raw:
            output.retain_grad()
        top = logits.topk(2, dim=1).values
        (top[:, 0] - top[:, 1]).sum().backward()
    acts = [as_feature_map(output.detach()) for output in raw]
    grads = [as_feature_map(output.grad) for output in raw]
    return acts, grads


def fit_subspaces(
    taps: FeatureTaps,
    batches: Callable[[], Iterable[torch.Tensor]],
    directions: Sequence[int],
    kind: str,
    positions: int,
    seed: int,
) -> list[LayerSubspace]:
    """Fit one subspace per tapped layer; ``directions[i]`` is K for layer i.

    ``batches()`` yields the training images (on the teacher's device) and is
    called twice, in the same order.
    """
    moments: list[Moments] | None = None
    generator = torch.Generator().manual_seed(seed)
    for x in batches():
        acts, grads = activations_and_contexts(taps, x)
        if moments is None:
            moments = [Moments(a.shape[1]) for a in acts]
        for layer, (a, c) in enumerate(zip(acts, grads)):
            index = position_index(a, positions, generator)
            moments[layer].add(gather_positions(a, index), gather_positions(c, index))
    if moments is None:
        raise ValueError("the training split is empty")

    fitted = []
    for layer, k in enumerate(directions):
        mu, s_a, s_c, s_ac = moments[layer].covariances()
        values, basis = top_eigenvectors(subspace_matrix(s_a, s_c, s_ac, kind), k)
        fitted.append(
            LayerSubspace(
                basis=basis,
                mean=mu,
                variance=torch.diagonal(basis.T @ s_a @ basis),
                eigenvalues=values,
                total_variance=float(torch.trace(s_a)),
            )
        )

    # Second pass: the same positions, to sign each direction by the majority of projections.
    positive = [torch.zeros(k, dtype=torch.long) for k in directions]
    total = [0] * len(directions)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for x in batches():
            _, acts = taps(x)
            for layer, a in enumerate(acts):
                sample = gather_positions(a, position_index(a, positions, generator)).double().cpu()
                projection = (sample - fitted[layer].mean) @ fitted[layer].basis
                positive[layer] += (projection > 0).sum(0)
                total[layer] += len(sample)
    for layer, subspace in enumerate(fitted):
        subspace.basis[:, positive[layer] * 2 < total[layer]] *= -1
    return [s.as_float() for s in fitted]


def save_subspaces(path, kind: str, subspaces: Sequence[LayerSubspace], teacher_layers: Sequence[str]) -> None:
    from ..io import save_torch

    layers = [dict(s.to_dict(), teacher_layer=name) for s, name in zip(subspaces, teacher_layers)]
    save_torch(path, {"kind": kind, "layers": layers})


def load_subspaces(path, kind: str, teacher_layers: Sequence[str]) -> list[LayerSubspace]:
    """Read subspaces saved by ``save_subspaces``, checking their kind and that they fit the pair's layers."""
    found, subspaces = read_subspace_file(path, teacher_layers)
    if found != kind:
        raise ValueError(f"{path} holds a {found!r} subspace, a {kind!r} one is needed")
    return subspaces


def load_subspace_files(paths: Sequence, teacher_layers: Sequence[str]) -> dict[str, list[LayerSubspace]]:
    """The subspaces of each file of ``paths``, by their kind (a bank of several methods may need several)."""
    loaded: dict[str, list[LayerSubspace]] = {}
    for path in paths:
        kind, subspaces = read_subspace_file(path, teacher_layers)
        if kind in loaded:
            raise ValueError(f"two {kind!r} subspace files given, {path} among them")
        loaded[kind] = subspaces
    return loaded


def read_subspace_file(path, teacher_layers: Sequence[str]) -> tuple[str, list[LayerSubspace]]:
    """The kind and the per-layer subspaces of a file of ``save_subspaces``, checked against the pair's layers."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    names = [layer["teacher_layer"] for layer in payload["layers"]]
    if names != list(teacher_layers):
        raise ValueError(f"{path} was fitted on teacher layers {names}, the pair uses {list(teacher_layers)}")
    return payload.get("kind"), [
        LayerSubspace(
            basis=layer["basis"],
            mean=layer["mean"],
            variance=layer["variance"],
            eigenvalues=layer["eigenvalues"],
            total_variance=layer["total_variance"],
        )
        for layer in payload["layers"]
    ]
