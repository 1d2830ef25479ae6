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
        # Three 1x1 convolutions, written as linear maps over channels-last features
        # (the same function, about 1.5x faster on CPU).
        self.regressor = nn.Sequential(
            nn.Linear(c_s, c_t), nn.ReLU(inplace=True), nn.Linear(c_t, c_t), nn.ReLU(inplace=True), nn.Linear(c_t, c_t)
        )
        # softplus(alpha) + eps = 5 at initialisation.
        alpha = math.log(math.expm1(_INITIAL_VARIANCE - _MIN_VARIANCE))
        self.alpha = nn.Parameter(torch.full((c_t,), alpha))

    def variance(self) -> torch.Tensor:
        return F.softplus(self.alpha) + _MIN_VARIANCE

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        return teacher_feature.permute(0, 2, 3, 1).contiguous()  # channels last, as the regressor's output

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean = self.regressor(student_feature.permute(0, 2, 3, 1))
        variance = self.variance()
        # The mean over all elements of 0.5 * ((mu - a)^2 / var + log var). Every channel has as many
        # elements, so it equals the mean over channels of (mean squared error of the channel / var):
        # dividing per channel instead of per element saves most of the backward pass's elementwise work.
        squared_error = (mean - target).pow(2).mean(dim=(0, 1, 2))
        return 0.5 * (squared_error / variance).mean() + 0.5 * variance.log().mean()


register_method("vid", "VID", layer_loss=VIDLoss)
