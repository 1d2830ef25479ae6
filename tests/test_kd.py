import math

import torch

from subtask_distill.methods import get_method, list_methods
from subtask_distill.methods.kd import kd_loss


def softmax(values, temperature):
    exps = [math.exp(v / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def test_kd_loss_matches_hand_computation():
    student = [[1.0, 0.0, -1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]]
    teacher = [[3.0, -1.0, 0.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0]]
    temperature = 4.0
    expected = 0.0
    for s, t in zip(student, teacher):
        p_t, p_s = softmax(t, temperature), softmax(s, temperature)
        expected += sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    expected = temperature**2 * expected / len(student)
    got = kd_loss(torch.tensor(student), torch.tensor(teacher), temperature)
    assert math.isclose(float(got), expected, rel_tol=1e-5)


def test_kd_loss_is_zero_when_logits_agree():
    logits = torch.randn(8, 5)
    assert float(kd_loss(logits, logits.clone(), 4.0)) < 1e-6


def test_kd_is_registered_without_a_layer_loss():
    assert "kd" in list_methods()
    assert not get_method("kd").uses_layers
