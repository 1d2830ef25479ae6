"""Attention transfer (Zagoruyko & Komodakis 2017).

q(A) = L2-normalise(flatten(mean over channels of A^2)); the layer loss is the
mean over batch and positions of (q(A_T) - q(A_S))^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import LayerLoss, register_method


def attention_map(feature: torch.Tensor) -> torch.Tensor:
    return F.normalize(feature.pow(2).mean(dim=1).flatten(1), dim=1)


class AttentionTransferLoss(LayerLoss):
    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        return attention_map(teacher_feature)

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (attention_map(student_feature) - target).pow(2).mean()


register_method("at", "AT", layer_loss=AttentionTransferLoss)
