"""Each layer loss against an independent NumPy computation, and the losses' invariants."""

import numpy as np
import pytest
import torch

from subtask_distill.methods import get_method, list_methods
from subtask_distill.methods.at import AttentionTransferLoss
from subtask_distill.methods.subdistill import SubDistillLoss
from subtask_distill.methods.vid import VIDLoss
from subtask_distill.methods.vkd import VKDLoss
from subtask_distill.optim import AdamW
from subtask_distill.subspace import LayerSubspace, Moments, subspace_matrix, top_eigenvectors


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_every_paper_method_is_registered():
    assert {"kd", "at", "vid", "vkd", "subdistill", "subdistill_pca"} <= set(list_methods())
    assert get_method("subdistill").subspace == "subdistill" and get_method("subdistill_pca").subspace == "pca"
    assert all(get_method(m).uses_layers for m in ("at", "vid", "vkd", "subdistill"))


def test_attention_transfer_matches_numpy():
    teacher, student = rand(2, 6, 3, 4, seed=1), rand(2, 3, 3, 4, seed=2)
    loss = AttentionTransferLoss((6, 3, 4), (3, 3, 4)).double()
    got = loss(student, loss.teacher_target(teacher))

    def q(a):
        energy = (a.numpy() ** 2).mean(axis=1).reshape(len(a), -1)
        return energy / np.linalg.norm(energy, axis=1, keepdims=True)

    assert float(got) == pytest.approx(((q(teacher) - q(student)) ** 2).mean(), rel=1e-10)


def test_vid_matches_numpy_and_starts_at_variance_five():
    teacher, student = rand(2, 4, 3, 3, seed=3), rand(2, 2, 3, 3, seed=4)
    loss = VIDLoss((4, 3, 3), (2, 3, 3)).double()
    assert torch.allclose(loss.variance(), torch.full((4,), 5.0, dtype=torch.float64))
    with torch.no_grad():
        loss.alpha.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    got = loss(student, loss.teacher_target(teacher)).item()

    layers = [m for m in loss.regressor if isinstance(m, torch.nn.Linear)]
    h = student.numpy().transpose(0, 2, 3, 1)  # channels last
    for index, layer in enumerate(layers):
        h = h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        if index < 2:
            h = np.maximum(h, 0)
    mean = h.transpose(0, 3, 1, 2)
    variance = np.log1p(np.exp([0.0, 1.0, -1.0, 2.0])) + 1e-5
    expected = (0.5 * ((mean - teacher.numpy()) ** 2 / variance[None, :, None, None] + np.log(variance)[None, :, None, None])).mean()
    assert got == pytest.approx(expected, rel=1e-10)


def test_vkd_matches_numpy():
    teacher, student = rand(3, 5, 2, 2, seed=5), rand(3, 3, 2, 2, seed=6)
    loss = VKDLoss((5, 2, 2), (3, 2, 2)).double()
    got = loss(student, loss.teacher_target(teacher)).item()

    t = teacher.numpy().mean(axis=(2, 3))
    t = (t - t.mean(axis=1, keepdims=True)) / np.sqrt(t.var(axis=1, keepdims=True) + 1e-5)
    projected = student.numpy().mean(axis=(2, 3)) @ loss.projection.weight.detach().numpy().T
    diff = np.abs(projected - t)
    expected = np.where(diff < 1, 0.5 * diff**2, diff - 0.5).mean()
    assert got == pytest.approx(expected, rel=1e-10)


def sample_moments(n=400, channels=5, seed=7):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, channels)) @ rng.normal(size=(channels, channels)) + rng.normal(size=channels)
    c = 0.3 * a @ rng.normal(size=(channels, channels)) + rng.normal(size=(n, channels))
    return a, c


def test_subdistill_matrix_and_basis_match_numpy():
    a, c = sample_moments()
    moments = Moments(a.shape[1])
    for chunk in np.array_split(np.arange(len(a)), 3):  # in batches, as the fit accumulates them
        moments.add(torch.from_numpy(a[chunk]), torch.from_numpy(c[chunk]))
    mu, s_a, s_c, s_ac = moments.covariances()

    centred = a - a.mean(axis=0)
    np_s_a, np_s_c, np_s_ac = centred.T @ centred / len(a), c.T @ c / len(a), centred.T @ c / len(a)
    ratio = np.sqrt(np.trace(np_s_c) / np.trace(np_s_a))
    np_m = np_s_ac + np_s_ac.T + 2 * ratio * np_s_a + 2 / ratio * np_s_c
    m = subspace_matrix(s_a, s_c, s_ac, "subdistill")
    assert np.allclose(m.numpy(), np_m, atol=1e-10)
    assert np.all(np.linalg.eigvalsh(np_m) > 0)  # the extra terms make M positive definite
    assert np.allclose(subspace_matrix(s_a, s_c, s_ac, "pca").numpy(), np_s_a)

    values, basis = top_eigenvectors(m, 3)
    np_values, np_vectors = np.linalg.eigh(np_m)
    assert np.allclose(values.numpy(), np_values[::-1][:3])
    overlap = np.abs(basis.numpy().T @ np_vectors[:, ::-1][:, :3])
    assert np.allclose(overlap, np.eye(3), atol=1e-8)  # same directions, up to sign
    assert np.allclose(basis.numpy().T @ basis.numpy(), np.eye(3), atol=1e-10)  # orthonormal


def subdistill_loss(channels=6, k=3, seed=8):
    basis, _ = torch.linalg.qr(rand(channels, k, seed=seed))
    subspace = LayerSubspace(
        basis=basis, mean=rand(channels, seed=seed + 1), variance=torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64),
        eigenvalues=torch.ones(k, dtype=torch.float64), total_variance=10.0,
    )
    return SubDistillLoss((channels, 4, 4), (k, 4, 4), subspace).double(), subspace


def test_subdistill_loss_is_zero_when_the_student_matches_the_projection():
    loss, subspace = subdistill_loss()
    teacher = rand(5, 6, 4, 4, seed=9)
    # Centre the teacher's activations on the subspace mean so the projection has zero batch mean.
    teacher = teacher - teacher.mean(dim=(0, 2, 3), keepdim=True) + subspace.mean.view(1, -1, 1, 1)
    target = loss.teacher_target(teacher)
    student = target + torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64).view(1, -1, 1, 1)  # any channel offset
    assert loss(student, target).item() == pytest.approx(0.0, abs=1e-12)


def test_subdistill_loss_normalises_by_the_sum_of_variances():
    loss, subspace = subdistill_loss()
    target = torch.zeros(4, 3, 4, 4, dtype=torch.float64)
    error = rand(4, 3, 4, 4, seed=10)
    error = error - error.mean(dim=(0, 2, 3), keepdim=True)  # survives the centring unchanged
    expected = (error**2).sum(dim=1).mean() / 7.0  # 4 + 2 + 1
    assert loss(error, target).item() == pytest.approx(float(expected), rel=1e-10)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_subdistill_training_loss_and_gradients_equal_the_direct_formula(layout):
    """The training path expands ||V c - t||^2 and has its own backward (batched matrix products on contiguous
    maps, 1x1 convolutions on channels-last ones); it must equal the formula as written."""
    loss, _ = subdistill_loss()
    with torch.no_grad():  # a rotation away from the identity, so V matters
        loss.rotation.parametrizations.weight.original.copy_(rand(3, 3, seed=12))
    student = (rand(5, 3, 4, 4, seed=13) + 2.0).contiguous(memory_format=layout).requires_grad_()
    target = rand(5, 3, 4, 4, seed=14).contiguous(memory_format=layout)
    loss.train()
    value = loss(student, target)
    value.backward()
    assert student.grad.is_contiguous(memory_format=layout)
    fast_grads = student.grad.clone(), loss.rotation.parametrizations.weight.original.grad.clone()

    student.grad = None
    loss.zero_grad()
    rotation = loss.rotation.weight
    centred = student - student.mean(dim=(0, 2, 3), keepdim=True)
    rotated = torch.einsum("kj,njhw->nkhw", rotation, centred)
    direct = (rotated - target).pow(2).sum(dim=1).mean() / 7.0
    direct.backward()
    assert value.item() == pytest.approx(direct.item(), rel=1e-10)
    assert torch.allclose(fast_grads[0], student.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(fast_grads[1], loss.rotation.parametrizations.weight.original.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(loss.centering.running_mean, 0.1 * student.detach().mean(dim=(0, 2, 3)))


def test_subdistill_student_centring_uses_the_running_mean_in_evaluation():
    loss, _ = subdistill_loss()
    features = rand(8, 3, 4, 4, seed=11) + 5.0
    loss.train()
    for _ in range(200):
        loss.centering(features)
    loss.eval()
    assert torch.allclose(loss.centering(features).mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("kind", ["vkd", "subdistill"])
def test_orthogonal_maps_stay_orthogonal_after_optimiser_steps(kind):
    if kind == "vkd":
        loss = VKDLoss((7, 2, 2), (4, 2, 2))
        weight = lambda: loss.projection.weight  # 7 x 4: orthonormal columns
    else:
        loss, _ = subdistill_loss()
        loss = loss.float()
        weight = lambda: loss.rotation.weight
    before = weight().detach().clone()
    optimiser = AdamW(loss.parameters(), lr=0.1)
    for step in range(10):
        teacher = torch.randn(4, *loss.teacher_shape)
        student = torch.randn(4, *loss.student_shape)
        value = loss(student, loss.teacher_target(teacher))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    w = weight().detach()
    assert not torch.allclose(w, before)  # it did train
    assert torch.allclose(w.T @ w, torch.eye(w.shape[1]), atol=1e-5)
    if kind == "subdistill":
        assert float(torch.det(w)) == pytest.approx(1.0, abs=1e-4)  # a rotation: no axis flipped
