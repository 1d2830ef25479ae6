"""Contracts every registered method and architecture meets, parametrised over the registries themselves:
a method or model added to a registry is tested here without anyone listing it."""

import contextlib
import copy

import pytest
import torch
import yaml

from subtask_distill.config import validate_config
from subtask_distill.methods import get_method, list_methods
from subtask_distill.models import create_model, list_models
from subtask_distill.models.build import build_network
from subtask_distill.models.taps import FeatureTaps
from subtask_distill.training.loop import training_step

from .conftest import REPO, distiller_for, random_run_inputs

LAYER_METHODS = [name for name in list_methods() if get_method(name).uses_layers]


def shipped_networks() -> dict[str, tuple[dict, int]]:
    """Every network entry of the shipped configs, by architecture, with its config's image size."""
    out = {}
    for path in (REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))):
        config = yaml.safe_load(path.read_text())
        size = (config or {}).get("data", {}).get("image_size")
        for pair in (config or {}).get("pairs", {}).values():
            for role in ("teacher", "student"):
                network = pair.get(role, {})
                if "arch" in network and size is not None:  # overlays name only what they change
                    out.setdefault(network["arch"], (network, size))
    return out


NETWORKS = shipped_networks()


@pytest.fixture
def method_config(test_config):
    """The tiny config with every registered method configured (default options)."""
    config = copy.deepcopy(test_config)
    config["methods"] = {name: {} for name in list_methods()}
    return validate_config(config)


@pytest.fixture(scope="module")
def inputs(test_config):
    torch.manual_seed(0)
    return random_run_inputs(test_config, "embedded", torch.randn(16, 3, 32, 32), torch.randint(0, 5, (16,)))


@pytest.mark.parametrize("name", list_methods())
def test_every_method_validates_and_trains_a_student_through_the_factory(name, method_config, inputs):
    distiller = distiller_for(method_config, "embedded", name, inputs)
    student, objective = distiller.student, distiller.objective
    optimizer = torch.optim.AdamW(list(student.parameters()) + list(objective.parameters()), lr=1e-2)
    before = copy.deepcopy(student.state_dict())
    x, index = inputs.train_x[:8], torch.arange(8)
    terms = training_step(student, objective, optimizer, x, distiller.data.teacher(x, index), contextlib.nullcontext)
    assert set(terms) == ({"loss", "kd", "layers"} if get_method(name).uses_layers else {"loss", "kd"})
    assert all(torch.isfinite(value) for value in terms.values())
    assert any(not torch.equal(before[k], v) for k, v in student.state_dict().items())
    assert get_method(name).display_name


@pytest.mark.parametrize("name", LAYER_METHODS)
def test_every_layer_loss_keeps_its_contract(name, method_config, inputs):
    """teacher_target is a function of the teacher alone, forward a differentiable scalar, and the loss's state
    (saved in the resume checkpoint) restores the same loss."""
    objective = distiller_for(method_config, "embedded", name, inputs).objective
    teacher_taps = FeatureTaps(inputs.teacher, method_config["pairs"]["embedded"]["teacher"]["layers"],
                               named_in=inputs.teacher.model)
    _, teacher_features = teacher_taps(inputs.train_x[:4])
    teacher_taps.remove()
    _, student_features = objective.student_taps(inputs.train_x[:4])
    targets = objective.teacher_targets(teacher_features)
    for loss, target, feature, size in zip(objective.layer_losses, targets, student_features, objective.sizes):
        assert len(target) == 4 and not target.requires_grad
        feature = torch.nn.functional.adaptive_avg_pool2d(feature, size)
        value = loss(feature, target)
        assert value.dim() == 0 and torch.isfinite(value) and value.requires_grad
        (gradient,) = torch.autograd.grad(value, feature, retain_graph=True)
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0

        restored = copy.deepcopy(loss)
        for parameter in restored.parameters():
            parameter.data.add_(1.0)
        restored.load_state_dict(loss.state_dict())
        loss.eval(), restored.eval()
        torch.testing.assert_close(restored(feature, target), loss(feature, target), rtol=0, atol=0)


@pytest.mark.parametrize("arch", list_models())
def test_every_architecture_is_used_by_a_shipped_config(arch):
    assert arch in NETWORKS, f"{arch} is registered but no config in the repository uses it"


@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=[] if NETWORKS.get(a, ({}, 32))[1] <= 32 else [pytest.mark.slow]) for a in list_models()]
)
def test_every_architecture_is_seeded_trainable_and_tappable_at_its_layers(arch):
    spec, size = NETWORKS[arch]
    torch.manual_seed(0)
    model = build_network(spec, num_classes=5)
    torch.manual_seed(0)
    again = build_network(spec, num_classes=5)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())), \
        "a seed must fix the initial weights"
    taps = FeatureTaps(model, spec["layers"])
    logits, features = taps(torch.randn(2, 3, size, size))
    assert logits.shape == (2, spec.get("num_classes", 5)) and len(features) == len(spec["layers"])
    assert all(f.dim() == 4 and f.shape[0] == 2 for f in features)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert create_model(arch, num_classes=3) is not None
