"""Each layer loss against an independent NumPy computation, and the losses' invariants."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from subtask_distill.methods import get_method, list_methods
from subtask_distill.methods.at import AttentionTransferLoss
from subtask_distill.methods.subdistill import SubDistillLoss
from subtask_distill.methods.subspace import LayerSubspace, Moments, subspace_matrix, top_eigenvectors
from subtask_distill.methods.vid import VIDLoss
from subtask_distill.methods.vkd import VKDLoss


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


@pytest.mark.parametrize("bias", [False, True])
def test_vid_matches_numpy_and_starts_at_variance_five(bias):
    teacher, student = rand(2, 4, 3, 3, seed=3), rand(2, 2, 3, 3, seed=4)
    loss = VIDLoss((4, 3, 3), (2, 3, 3), bias=bias, learn_variance=True).double()
    assert torch.allclose(loss.variance(), torch.full((4,), 5.0, dtype=torch.float64))
    with torch.no_grad():
        loss.alpha.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    got = loss(student, loss.teacher_target(teacher)).item()

    layers = [m for m in loss.regressor if isinstance(m, torch.nn.Linear)]
    assert all((layer.bias is not None) == bias for layer in layers)
    h = student.numpy().transpose(0, 2, 3, 1)  # channels last
    for index, layer in enumerate(layers):
        h = h @ layer.weight.detach().numpy().T + (layer.bias.detach().numpy() if bias else 0.0)
        if index < 2:
            h = np.maximum(h, 0)
    mean = h.transpose(0, 3, 1, 2)
    variance = np.log1p(np.exp([0.0, 1.0, -1.0, 2.0])) + 1e-5
    expected = (0.5 * ((mean - teacher.numpy()) ** 2 / variance[None, :, None, None] + np.log(variance)[None, :, None, None])).mean()
    assert got == pytest.approx(expected, rel=1e-10)


def test_vid_by_default_keeps_its_variance_fixed_and_has_no_bias():
    """As the authors' code ran on a GPU: the variance is no parameter, so no optimiser ever moves it."""
    loss = VIDLoss((4, 3, 3), (2, 3, 3))
    assert all(layer.bias is None for layer in loss.regressor if isinstance(layer, torch.nn.Linear))
    assert not any(parameter is loss.alpha for parameter in loss.parameters())
    assert "alpha" in loss.state_dict()  # a buffer: saved with the run, never trained
    optimiser = torch.optim.AdamW(loss.parameters(), lr=0.1)
    for seed in range(5):
        value = loss(rand(4, 2, 3, 3, seed=seed).float(), loss.teacher_target(rand(4, 4, 3, 3, seed=seed + 9).float()))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    assert torch.allclose(loss.variance(), torch.full((4,), 5.0))
    learned = VIDLoss((4, 3, 3), (2, 3, 3), learn_variance=True)
    assert any(parameter is learned.alpha for parameter in learned.parameters())


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


def subdistill_loss(channels=6, k=3, seed=8, **options):
    """A SubDistill layer loss; by default the paper's centring and an identity start (the formulas below)."""
    basis, _ = torch.linalg.qr(rand(channels, k, seed=seed))
    subspace = LayerSubspace(
        basis=basis, mean=rand(channels, seed=seed + 1), variance=torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64),
        eigenvalues=torch.ones(k, dtype=torch.float64), total_variance=10.0,
    )
    options = {"student_scaling": "centre", "rotation_init": "identity", "orthogonal_map": "cayley", **options}
    return SubDistillLoss((channels, 4, 4), (k, 4, 4), subspace, **options).double(), subspace


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
    assert torch.allclose(loss.normalisation.running_mean, 0.1 * student.detach().mean(dim=(0, 2, 3)))


@pytest.mark.parametrize("scaling", ["centre", "standardise"])
def test_subdistill_student_normalisation_uses_the_running_mean_in_evaluation(scaling):
    loss, _ = subdistill_loss(student_scaling=scaling)
    features = rand(8, 3, 4, 4, seed=11) * 3.0 + 5.0
    loss.train()
    for _ in range(200):
        loss.normalisation(features)
    loss.eval()
    evaluated = loss.normalisation(features)
    assert torch.allclose(evaluated.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(evaluated, features - features.mean(dim=(0, 2, 3), keepdim=True), atol=1e-6)  # centred only


def test_standardised_student_channels_have_unit_variance_inside_the_training_loss():
    loss, _ = subdistill_loss(student_scaling="standardise")
    features = rand(8, 3, 4, 4, seed=15) * torch.tensor([0.1, 3.0, 40.0], dtype=torch.float64).view(1, -1, 1, 1) + 2.0
    loss.train()
    normalised = loss.normalisation(features)
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10)
    variance = features.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(normalised.var(dim=(0, 2, 3), unbiased=False), variance / (variance + 1e-5), rtol=1e-10)
    assert torch.allclose(normalised.var(dim=(0, 2, 3), unbiased=False)[1:], torch.ones(2, dtype=torch.float64), atol=1e-5)


def test_standardised_subdistill_loss_is_the_authors_batch_norm_call():
    """The authors' Centering2D: F.batch_norm with a running mean, a variance of ones, no affine, in training mode."""
    loss, _ = subdistill_loss(student_scaling="standardise", rotation_init="random", orthogonal_map="matrix_exp")
    student = (rand(5, 3, 4, 4, seed=16) * 4.0 + 1.0).requires_grad_()
    target = rand(5, 3, 4, 4, seed=17)
    loss.train()
    value = loss(student, target)
    running_mean = torch.zeros(3, dtype=torch.float64)
    normalised = F.batch_norm(student, running_mean, torch.ones(3, dtype=torch.float64), None, None, True, 0.1, 1e-5)
    rotated = torch.einsum("kj,njhw->nkhw", loss.rotation.weight, normalised)
    expected = F.mse_loss(rotated, target, reduction="none").flatten(1).sum(1).div(16 * 7.0).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    assert torch.allclose(loss.normalisation.running_mean, running_mean)


def test_subdistill_rotation_starts_random_and_orthogonal_or_at_the_identity():
    torch.manual_seed(0)
    random_v = subdistill_loss(rotation_init="random", orthogonal_map="matrix_exp")[0].rotation.weight.detach()
    torch.manual_seed(0)
    again = subdistill_loss(rotation_init="random", orthogonal_map="matrix_exp")[0].rotation.weight.detach()
    identity = subdistill_loss(rotation_init="identity")[0].rotation.weight.detach()
    assert torch.equal(random_v, again)  # seeded like the student
    assert torch.allclose(random_v.T @ random_v, torch.eye(3, dtype=torch.float64), atol=1e-6)  # built in float32
    assert not torch.allclose(random_v.abs(), torch.eye(3, dtype=torch.float64), atol=0.05)
    assert torch.equal(identity, torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "kind, options",
    [
        ("vkd", {"orthogonal_map": "householder"}),
        ("vkd", {"orthogonal_map": "cayley"}),
        ("subdistill", {}),
        ("subdistill", {"student_scaling": "standardise", "rotation_init": "random", "orthogonal_map": "matrix_exp"}),
    ],
)
def test_orthogonal_maps_stay_orthogonal_after_optimiser_steps(kind, options):
    if kind == "vkd":
        loss = VKDLoss((7, 2, 2), (4, 2, 2), **options)
        weight = lambda: loss.projection.weight  # 7 x 4: orthonormal columns
    else:
        loss, _ = subdistill_loss(**options)
        loss = loss.float()
        weight = lambda: loss.rotation.weight
    before = weight().detach().clone()
    optimiser = torch.optim.AdamW(loss.parameters(), lr=0.1, weight_decay=0.0)  # the study's (PyTorch's Householder map needs it)
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
    if kind == "subdistill":  # the parametrisation keeps the determinant: no axis gets flipped in training
        assert float(torch.det(w)) == pytest.approx(float(torch.det(before)), abs=1e-4)
