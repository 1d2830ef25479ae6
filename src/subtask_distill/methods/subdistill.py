"""SubDistill (Chormai et al. 2026): distil the teacher's task-relevant subspace.

Teacher target: U^T (a_T - mu_T) at every position, U the fitted subspace (see
``subspace.py``). Student: each channel centred as batch norm would, without
dividing by the variance and without affine parameters, then a learnable
orthogonal K x K rotation V (the Cayley map of a skew-symmetric matrix, which
costs one solve per step where the matrix exponential costs several products;
both give rotations only, det V = +1, so V cannot flip one axis, which is why
U's signs are fixed at fitting time). Loss: the squared error
summed over the K channels, averaged over positions and batch, divided by
sum_k s_k.

``subdistill_pca`` is the same loss on a plain PCA subspace (M = S_a), an
ablation beyond the paper.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from ..subspace import LayerSubspace
from .registry import LayerLoss, Shape, register_method


class MeanCentering(nn.Module):
    """Subtract the per-channel mean: the batch mean in training, a running mean in evaluation."""

    def __init__(self, channels: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        else:
            mean = self.running_mean
        return x - mean.view(1, -1, 1, 1)


def identity_rotation(size: int) -> nn.Module:
    linear = nn.Linear(size, size, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(size))
    return orthogonal(linear, orthogonal_map="cayley")


class SubDistillLoss(LayerLoss):
    def __init__(self, teacher_shape: Shape, student_shape: Shape, subspace: LayerSubspace):
        super().__init__(teacher_shape, student_shape)
        c_t, k = teacher_shape[0], student_shape[0]
        if tuple(subspace.basis.shape) != (c_t, k):
            raise ValueError(
                f"subspace basis is {tuple(subspace.basis.shape)}, expected {(c_t, k)} "
                "(teacher channels x student channels)"
            )
        self.register_buffer("basis", subspace.basis.clone())
        self.register_buffer("mean", subspace.mean.clone())
        self.register_buffer("variance_sum", subspace.variance.sum().clone())
        self.centering = MeanCentering(k)
        self.rotation = identity_rotation(k)

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        centred = teacher_feature - self.mean.view(1, -1, 1, 1)
        return torch.einsum("nchw,ck->nkhw", centred, self.basis)

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n, k, h, w = student_feature.shape
        centred = self.centering(student_feature).flatten(2)
        rotation = self.rotation.weight.expand(n, k, k)
        # V c - t in one fused multiply-add, then the squared error summed over channels and averaged over
        # positions and batch: the same value as (V c - t).pow(2).sum(1).mean(), with fewer passes over memory.
        difference = torch.baddbmm(target.flatten(2), rotation, centred, beta=-1)
        return difference.square().sum() / (n * h * w) / self.variance_sum


register_method("subdistill", "SubDistill", layer_loss=SubDistillLoss, subspace="subdistill")
register_method("subdistill_pca", "SubDistill (PCA)", layer_loss=SubDistillLoss, subspace="pca")
