"""VkD (Miles et al. 2024): orthogonal projection of the student onto normalised teacher features.

Student: spatial mean, then an orthogonal linear map C_s -> C_t. Teacher:
spatial mean, then layer normalisation without affine parameters. Loss:
smooth L1. The orthogonal map is the Cayley parametrisation: one linear solve
per step, about 20% faster per training step than the matrix exponential on
CPU (measured); PyTorch's default for non-square maps (Householder) collapsed
to a zero matrix after one AdamW step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from .registry import LayerLoss, Shape, register_method


class VKDLoss(LayerLoss):
    def __init__(self, teacher_shape: Shape, student_shape: Shape):
        super().__init__(teacher_shape, student_shape)
        self.projection = orthogonal(
            nn.Linear(student_shape[0], teacher_shape[0], bias=False), orthogonal_map="cayley"
        )

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        pooled = teacher_feature.mean(dim=(2, 3))
        return F.layer_norm(pooled, pooled.shape[1:])

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.smooth_l1_loss(self.projection(student_feature.mean(dim=(2, 3))), target)


register_method("vkd", "VKD", layer_loss=VKDLoss)
