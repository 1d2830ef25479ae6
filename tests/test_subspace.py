"""Fitting SubDistill's subspaces on a small teacher."""

import pytest
import torch

from subtask_distill.methods.subspace import (
    Moments,
    activations_and_contexts,
    fit_subspaces,
    gather_positions,
    load_subspaces,
    position_index,
    save_subspaces,
)
from subtask_distill.models import SubtaskHead, create_model
from subtask_distill.models.taps import FeatureTaps

LAYERS = ["layer1", "layer2", "layer3", "layer4"]


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    model = create_model("embedded_resnet", num_classes=10)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode differs from identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    head = SubtaskHead(model, [0, 1, 2, 3, 4]).eval().requires_grad_(False)
    return FeatureTaps(head, LAYERS, named_in=model)


@pytest.fixture(scope="module")
def images():
    return torch.randn(48, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def batches_of(images, size=16):
    return lambda: (images[i : i + size] for i in range(0, len(images), size))


def test_contexts_are_the_gradient_of_the_top_two_logit_margin(teacher, images):
    x = images[:4]
    acts, grads = activations_and_contexts(teacher, x)
    model = teacher.model.model
    # Independent computation: split the network at layer2 by hand.
    with torch.enable_grad():
        hidden = model.layer2(model.layer1(model.stem(x))).detach().requires_grad_(True)
        logits = model.fc(model.pool(model.layer4(model.layer3(hidden))).flatten(1))[:, :5]
        top = logits.topk(2, dim=1).values
        (expected,) = torch.autograd.grad((top[:, 0] - top[:, 1]).sum(), hidden)
    assert torch.allclose(acts[1], hidden)
    assert torch.allclose(grads[1], expected, atol=1e-6)


def test_fitted_subspaces_are_orthonormal_signed_and_deterministic(teacher, images):
    directions = [8, 16, 32, 64]
    fitted = fit_subspaces(teacher, batches_of(images), directions, "subdistill", positions=20, seed=3)
    again = fit_subspaces(teacher, batches_of(images), directions, "subdistill", positions=20, seed=3)
    for layer, (subspace, k) in enumerate(zip(fitted, directions)):
        c = subspace.basis.shape[0]
        assert subspace.basis.shape == (c, k)
        assert torch.allclose(subspace.basis.T @ subspace.basis, torch.eye(k), atol=1e-4)
        assert torch.all(subspace.variance > 0) and 0 < subspace.captured <= 1.0 + 1e-6
        assert torch.all(subspace.eigenvalues[:-1] >= subspace.eigenvalues[1:])
        assert torch.equal(subspace.basis, again[layer].basis)

    # Sign convention, on the same sampled positions as the fit: most centred activations project positively.
    generator = torch.Generator().manual_seed(3)
    positive = [torch.zeros(k) for k in directions]
    total = [0] * 4
    with torch.no_grad():
        for x in batches_of(images)():
            _, acts = teacher(x)
            for layer, a in enumerate(acts):
                sample = gather_positions(a, position_index(a, 20, generator))
                positive[layer] += ((sample - fitted[layer].mean) @ fitted[layer].basis > 0).sum(0)
                total[layer] += len(sample)
    for layer in range(4):
        assert torch.all(positive[layer] * 2 >= total[layer])


def test_pca_kind_captures_the_most_variance(teacher, images):
    task = fit_subspaces(teacher, batches_of(images), [8, 8, 8, 8], "subdistill", positions=20, seed=0)
    pca = fit_subspaces(teacher, batches_of(images), [8, 8, 8, 8], "pca", positions=20, seed=0)
    for a, b in zip(task, pca):
        assert b.captured >= a.captured - 1e-6  # PCA maximises captured variance by construction


def test_layer_smaller_than_k_is_refused(teacher, images):
    with pytest.raises(ValueError, match="16-channel"):
        fit_subspaces(teacher, batches_of(images), [17, 8, 8, 8], "subdistill", positions=5, seed=0)


def test_positions_are_sampled_without_replacement_and_capped():
    feature = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    index = position_index(feature, 20, torch.Generator().manual_seed(0))
    assert index.shape == (2, 16)  # only 16 positions exist
    assert all(len(set(row.tolist())) == 16 for row in index)
    picked = gather_positions(feature, index)
    assert picked.shape == (32, 3)
    assert torch.equal(picked[0], feature[0, :, index[0, 0] // 4, index[0, 0] % 4])


def test_moments_need_samples():
    with pytest.raises(ValueError):
        Moments(3).covariances()


def test_subspaces_round_trip_and_mismatches_are_refused(teacher, images, tmp_path):
    fitted = fit_subspaces(teacher, batches_of(images), [4, 4, 4, 4], "pca", positions=5, seed=0)
    path = tmp_path / "s.pt"
    save_subspaces(path, "pca", fitted, LAYERS)
    back = load_subspaces(path, "pca", LAYERS)
    assert all(torch.equal(a.basis, b.basis) for a, b in zip(fitted, back))
    with pytest.raises(ValueError, match="pca"):
        load_subspaces(path, "subdistill", LAYERS)
    with pytest.raises(ValueError, match="layers"):
        load_subspaces(path, "pca", ["layer1"])
