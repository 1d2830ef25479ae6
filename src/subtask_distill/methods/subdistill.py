"""SubDistill (Chormai et al. 2026): distil the teacher's task-relevant subspace.

Teacher target: U^T (a_T - mu_T) at every position, U the fitted subspace (see
``subspace.py``). Student: each channel normalised without affine parameters,
then a learnable orthogonal K x K matrix V. Loss: the squared error summed over
the K channels, averaged over positions and batch, divided by sum_k s_k.

Options (``methods.subdistill`` in the config), each with the authors' code
first and the paper's text or this project's earlier choice second:

- ``student_scaling``: ``standardise`` divides each centred channel by its
  batch standard deviation in training (the authors' ``Centering2D`` calls
  ``F.batch_norm`` in training mode, which does) and only centres in
  evaluation; ``centre`` only centres (the paper's Eq. 5). Centring uses the
  batch mean in training and a running mean in evaluation.
- ``rotation_init``: ``random`` starts V at a random orthogonal matrix
  (PyTorch's orthogonal parametrisation of a freshly initialised linear map;
  its determinant is +1 or -1); ``identity`` starts it at the identity.
- ``orthogonal_map``: ``matrix_exp`` (PyTorch's default for square maps) or
  ``cayley`` (one linear solve per step instead of several products). Both
  keep V's determinant, which is why U's signs are fixed at fitting time.

``subdistill_pca`` is the same loss on a plain PCA subspace (M = S_a), an
ablation beyond the paper.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from .registry import LayerLoss, Shape, register_method
from .subspace import LayerSubspace


class StudentNormalisation(nn.Module):
    """Centre each channel, and with ``standardise`` also divide it by its batch standard deviation in training.

    Training uses the batch statistics (mean and biased variance over batch and
    positions, as batch norm) and updates a running mean; evaluation subtracts
    the running mean only.
    """

    def __init__(self, channels: int, standardise: bool, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.standardise = standardise
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x - self.running_mean.view(1, -1, 1, 1)
        x = x.to(torch.promote_types(x.dtype, torch.float32))  # batch statistics in at least float32
        mean = x.mean(dim=(0, 2, 3))
        with torch.no_grad():
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
        centred = x - mean.view(1, -1, 1, 1)
        if not self.standardise:
            return centred
        variance = centred.square().mean(dim=(0, 2, 3))
        return centred * torch.rsqrt(variance + self.eps).view(1, -1, 1, 1)


def orthogonal_matrix(size: int, init: str, orthogonal_map: str) -> nn.Module:
    """A learnable orthogonal size x size matrix (its ``weight``), starting at a random one or the identity."""
    linear = nn.Linear(size, size, bias=False)  # a random init, made orthogonal by the parametrisation
    if init == "identity":
        with torch.no_grad():
            linear.weight.copy_(torch.eye(size))
    elif init != "random":
        raise ValueError(f"rotation_init must be random or identity, got {init!r}")
    return orthogonal(linear, orthogonal_map=orthogonal_map)


class SubDistillLoss(LayerLoss):
    def __init__(
        self,
        teacher_shape: Shape,
        student_shape: Shape,
        subspace: LayerSubspace,
        student_scaling: Literal["standardise", "centre"] = "standardise",
        rotation_init: Literal["random", "identity"] = "random",
        orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp",
    ):
        super().__init__(teacher_shape, student_shape)
        c_t, k = teacher_shape[0], student_shape[0]
        if tuple(subspace.basis.shape) != (c_t, k):
            raise ValueError(
                f"subspace basis is {tuple(subspace.basis.shape)}, expected {(c_t, k)} "
                "(teacher channels x student channels)"
            )
        if student_scaling not in ("standardise", "centre"):
            raise ValueError(f"student_scaling must be standardise or centre, got {student_scaling!r}")
        self.register_buffer("basis", subspace.basis.clone())
        self.register_buffer("mean", subspace.mean.clone())
        self.register_buffer("variance_sum", subspace.variance.sum().clone())
        self.normalisation = StudentNormalisation(k, standardise=student_scaling == "standardise")
        self.rotation = orthogonal_matrix(k, rotation_init, orthogonal_map)

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        centred = teacher_feature - self.mean.view(1, -1, 1, 1)
        return torch.einsum("nchw,ck->nkhw", centred, self.basis)

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, _, h, w = student_feature.shape
        rotated = torch.einsum("kj,njhw->nkhw", self.rotation.weight, self.normalisation(student_feature))
        difference = rotated - target
        # A sum over every element: in at least float32, which bf16 autocast would not give.
        error = difference.to(torch.promote_types(difference.dtype, torch.float32)).square().sum()
        return error / (n * h * w) / self.variance_sum


register_method("subdistill", "SubDistill", layer_loss=SubDistillLoss, subspace="subdistill")
register_method("subdistill_pca", "SubDistill (PCA)", layer_loss=SubDistillLoss, subspace="pca")
