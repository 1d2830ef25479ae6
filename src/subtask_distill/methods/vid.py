"""Variational information distillation (Ahn et al. 2019).

A 1x1-conv regressor predicts the teacher's activations from the student's,
with a learned per-channel variance; the loss is the Gaussian negative log
likelihood (without its constant).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import LayerLoss, Shape, register_method

_INITIAL_VARIANCE = 5.0
_MIN_VARIANCE = 1e-5


class VIDLoss(LayerLoss):
    def __init__(self, teacher_shape: Shape, student_shape: Shape):
        super().__init__(teacher_shape, student_shape)
        c_t, c_s = teacher_shape[0], student_shape[0]
        self.regressor = nn.Sequential(
            nn.Conv2d(c_s, c_t, 1), nn.ReLU(), nn.Conv2d(c_t, c_t, 1), nn.ReLU(), nn.Conv2d(c_t, c_t, 1)
        )
        # softplus(alpha) + eps = 5 at initialisation.
        alpha = math.log(math.expm1(_INITIAL_VARIANCE - _MIN_VARIANCE))
        self.alpha = nn.Parameter(torch.full((c_t,), alpha))

    def variance(self) -> torch.Tensor:
        return F.softplus(self.alpha) + _MIN_VARIANCE

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean = self.regressor(student_feature)
        variance = self.variance().view(1, -1, 1, 1)
        return (0.5 * ((mean - target).pow(2) / variance + variance.log())).mean()


register_method("vid", "VID", layer_loss=VIDLoss)
