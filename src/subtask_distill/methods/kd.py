"""Output-only knowledge distillation (Hinton et al. 2015).

The student matches the teacher's temperature-softened subtask logits; it
never sees a ground-truth label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import register_method


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t / T) || softmax(s / T)), averaged over the batch."""
    log_p_student = F.log_softmax(student_logits / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return temperature**2 * kl


register_method("kd", "Output only")
