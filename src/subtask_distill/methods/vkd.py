"""VkD (Miles et al. 2024): orthogonal projection of the student onto normalised teacher features.

Student: spatial mean, then an orthogonal linear map C_s -> C_t (from a random
start). Teacher: spatial mean, then layer normalisation without affine
parameters. Loss: smooth L1.

Option ``orthogonal_map`` (``methods.vkd`` in the config): ``householder``,
PyTorch's default for a non-square map and the authors' choice, or ``cayley``
(one linear solve per step). PyTorch's Householder parametrisation keeps its
diagonal fixed at -1 by giving it no gradient, so any weight decay shrinks it,
and truncated to an integer it zeroes the whole map after one step: the
config check refuses ``householder`` with ``training.weight_decay`` > 0.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from .registry import LayerLoss, Shape, register_method


class VKDLoss(LayerLoss):
    def __init__(
        self,
        teacher_shape: Shape,
        student_shape: Shape,
        orthogonal_map: Literal["householder", "cayley", "matrix_exp"] = "householder",
    ):
        super().__init__(teacher_shape, student_shape)
        self.projection = orthogonal(
            nn.Linear(student_shape[0], teacher_shape[0], bias=False), orthogonal_map=orthogonal_map
        )

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        pooled = teacher_feature.mean(dim=(2, 3))
        return F.layer_norm(pooled, pooled.shape[1:])

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(self.projection(student_feature.mean(dim=(2, 3))), target)


register_method("vkd", "VKD", layer_loss=VKDLoss)
