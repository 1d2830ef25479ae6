"""Variational information distillation (Ahn et al. 2019).

A regressor of three 1x1 convolutions (student to teacher channels, ReLU
between them) predicts the teacher's activations from the student's; the
loss is the Gaussian negative log likelihood (without its constant) with a
per-channel variance sigma^2 = softplus(alpha) + 1e-5 that starts at 5.

Options (``methods.vid`` in the config), the authors' code first:

- ``bias``: whether the regressor's convolutions have biases (false in the
  authors' code, RepDistiller and torchdistill).
- ``learn_variance``: false keeps the variance at 5 for the whole training.
  The authors' code meant to learn it, but on a GPU its
  ``nn.Parameter(...).to(device)`` returns a plain tensor that is never
  registered, so their published VID numbers come from a fixed variance; true
  learns it, as the VID paper specifies.
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
    def __init__(self, teacher_shape: Shape, student_shape: Shape, bias: bool = False, learn_variance: bool = False):
        super().__init__(teacher_shape, student_shape)
        c_t, c_s = teacher_shape[0], student_shape[0]
        # The three 1x1 convolutions, written as the same linear maps applied over the channels of
        # channels-last features: faster than Conv2d on the CPU (docs/performance.md).
        self.regressor = nn.Sequential(
            nn.Linear(c_s, c_t, bias=bias),
            nn.ReLU(inplace=True),
            nn.Linear(c_t, c_t, bias=bias),
            nn.ReLU(inplace=True),
            nn.Linear(c_t, c_t, bias=bias),
        )
        # softplus(alpha) + eps = 5 at initialisation.
        alpha = torch.full((c_t,), math.log(math.expm1(_INITIAL_VARIANCE - _MIN_VARIANCE)))
        if learn_variance:
            self.alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("alpha", alpha)

    def variance(self) -> torch.Tensor:
        return F.softplus(self.alpha) + _MIN_VARIANCE

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mean = self.regressor(student_feature.permute(0, 2, 3, 1))
        variance = self.variance()
        # The mean over all elements of 0.5 * ((mu - a)^2 / var + log var). Every channel has as many
        # elements, so it equals the mean over channels of (mean squared error of the channel / var):
        # dividing per channel instead of per element saves most of the backward pass's elementwise work.
        squared_error = (mean - target.permute(0, 2, 3, 1)).pow(2).mean(dim=(0, 1, 2))
        return 0.5 * (squared_error / variance).mean() + 0.5 * variance.log().mean()


register_method("vid", "VID", layer_loss=VIDLoss)
