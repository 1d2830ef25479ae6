"""Cached and online teacher outputs agree, and the cache is never used stale."""

import logging

import pytest
import torch

from subtask_distill.data.embedded import build_splits
from subtask_distill.distill import split_tensors
from subtask_distill.io import save_arrays
from subtask_distill.methods import get_method
from subtask_distill.models import SubtaskHead, create_model
from subtask_distill.models.taps import FeatureTaps
from subtask_distill.objective import TeacherOutputs, build_objective
from subtask_distill.optim import AdamW
from subtask_distill.runtime import autocast_context
from subtask_distill.subspace import LayerSubspace
from subtask_distill.teacher import save_checkpoint
from subtask_distill.train import training_step
from subtask_distill.teacher_outputs import (
    CachedTeacher,
    OnlineTeacher,
    cached_tensors,
    layer_targets,
    resolve_mode,
    target_cache_key,
    teacher_features,
)

QUIET = logging.getLogger("test")


def random_subspaces(teacher_shapes, student_shapes):
    generator = torch.Generator().manual_seed(0)
    subspaces = []
    for (c_t, *_), (k, *_) in zip(teacher_shapes, student_shapes):
        basis = torch.linalg.qr(torch.randn(c_t, k, generator=generator))[0]
        subspaces.append(LayerSubspace(basis, torch.randn(c_t, generator=generator), torch.rand(k) + 0.5, torch.ones(k), 1.0))
    return subspaces


def tiny_networks(method_name, test_config, x):
    """The embedded teacher (with its taps) and student at seed 0, and the method's objective for them."""
    pair = test_config["pairs"]["embedded"]
    torch.manual_seed(0)
    teacher = SubtaskHead(create_model("embedded_resnet", num_classes=10), test_config["data"]["subtask_classes"]).eval()
    student = create_model("embedded_cnn", num_classes=5)
    method = get_method(method_name)
    teacher_taps = FeatureTaps(teacher, pair["teacher"]["layers"] if method.uses_layers else [], named_in=teacher.model)
    student_taps = FeatureTaps(student, pair["student"]["layers"])
    teacher_shapes = teacher_taps.shapes(x[:1])
    subspaces = random_subspaces(teacher_shapes, student_taps.shapes(x[:1])) if method.subspace else None
    objective = build_objective(method, {}, 4.0, 1.0, student_taps if method.uses_layers else None, teacher_shapes, subspaces, x[:1])
    return teacher, teacher_taps, student, objective


@pytest.mark.parametrize("method_name", ["kd", "at", "vid", "vkd", "subdistill"])
def test_cached_and_online_teacher_give_the_same_losses(method_name, tiny_data, test_config):
    tensors = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))
    x = tensors["train_x"]
    teacher, teacher_taps, student, objective = tiny_networks(method_name, test_config, x)

    with torch.no_grad():
        logits = teacher(x[:])
    targets = layer_targets(objective, teacher_features(teacher_taps, x, objective.sizes, torch.device("cpu"))) if get_method(method_name).uses_layers else []
    cached = CachedTeacher(TeacherOutputs(logits, targets), torch.device("cpu"))
    online = OnlineTeacher(teacher_taps, objective)

    index = torch.tensor([5, 0, 17, 3, 9, 11])
    batch = x[index]
    student.eval()  # the same student pass for both (batch norm in eval mode)
    objective.eval()
    terms_cached = objective(student, batch, cached(batch, index))
    terms_online = objective(student, batch, online(batch, index))
    assert terms_cached.keys() == terms_online.keys()
    for name in terms_cached:
        torch.testing.assert_close(terms_cached[name], terms_online[name], rtol=1e-5, atol=1e-6)


@pytest.fixture
def key_inputs(tmp_path, tiny_data, test_config):
    spec = test_config["pairs"]["embedded"]["teacher"]
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "teacher.pt", create_model(spec["arch"], num_classes=10), spec)
    save_arrays(tmp_path / "splits.npz", build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))
    return {
        "teacher_checkpoint": tmp_path / "teacher.pt",
        "splits": tmp_path / "splits.npz",
        "teacher_spec": spec,
        "sizes": [(32, 32), (16, 16), (8, 8), (4, 4)],
        "method": "at",
        "options": {},
        "subspace": None,
        "rho": "1",
        "seed": 0,
    }


def test_cache_key_changes_with_teacher_rho_seed_data_and_method(key_inputs, tmp_path, tiny_data, test_config):
    key = target_cache_key(**key_inputs)
    assert key == target_cache_key(**key_inputs)

    spec = key_inputs["teacher_spec"]
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "other_teacher.pt", create_model(spec["arch"], num_classes=10), spec)
    other_data = dict(test_config["data"], digit=dict(test_config["data"]["digit"], style="strokes"))
    save_arrays(tmp_path / "other_data.npz", build_splits(tiny_data[1], other_data, 1.0, seed=0))
    save_arrays(tmp_path / "rho_half.npz", build_splits(tiny_data[1], test_config["data"], 0.5, seed=0))
    save_arrays(tmp_path / "seed_1.npz", build_splits(tiny_data[1], test_config["data"], 1.0, seed=1))
    variants = {
        "teacher checkpoint": dict(key_inputs, teacher_checkpoint=tmp_path / "other_teacher.pt"),
        "data": dict(key_inputs, splits=tmp_path / "other_data.npz"),
        "rho": dict(key_inputs, splits=tmp_path / "rho_half.npz", rho="0.5"),
        "seed": dict(key_inputs, splits=tmp_path / "seed_1.npz", seed=1),
        "rho named only": dict(key_inputs, rho="0.5"),
        "layers": dict(key_inputs, teacher_spec=dict(spec, layers=["layer1", "layer2", "layer3", "layer3"])),
        "method": dict(key_inputs, method="vid"),
        "subspace": dict(key_inputs, subspace=tmp_path / "seed_1.npz"),
    }
    keys = {name: target_cache_key(**inputs) for name, inputs in variants.items()}
    assert all(k != key for k in keys.values()), keys
    assert len(set(keys.values())) == len(keys)


def test_cache_computes_once_and_recomputes_a_corrupt_entry(tmp_path, caplog):
    calls = []

    def compute():
        calls.append(1)
        return [torch.arange(6.0).view(2, 3)]

    first = cached_tensors(tmp_path, "abc", compute, QUIET)
    second = cached_tensors(tmp_path, "abc", compute, QUIET)
    assert len(calls) == 1 and torch.equal(first[0], second[0])

    (tmp_path / "abc.pt").write_bytes(b"\x00broken")
    with caplog.at_level(logging.WARNING):
        third = cached_tensors(tmp_path, "abc", compute, QUIET)
    assert len(calls) == 2 and torch.equal(third[0], first[0])
    assert "unreadable cache entry" in caplog.text


def test_teacher_output_modes():
    assert resolve_mode("auto", augmented=False) == "cached"
    assert resolve_mode("auto", augmented=True) == "online"
    assert resolve_mode("online", augmented=False) == "online"
    with pytest.raises(ValueError, match="training.teacher_outputs"):
        resolve_mode("cached", augmented=True)


@pytest.mark.parametrize("method_name", ["kd", "at", "vid", "vkd", "subdistill"])
def test_every_method_trains_under_bf16_autocast(method_name, tiny_data, test_config):
    """CUDA's default bf16 autocast, exercised on the CPU: bf16 features reach every layer loss."""
    x = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))["train_x"][:8]
    teacher, teacher_taps, student, objective = tiny_networks(method_name, test_config, x)
    autocast = autocast_context("bf16", torch.device("cpu"))
    teacher_outputs = OnlineTeacher(teacher_taps, objective, autocast)(x, torch.arange(len(x)))
    optimizer = AdamW(list(student.parameters()) + list(objective.parameters()), lr=1e-2)
    before = [p.detach().clone() for p in student.parameters()]

    terms = training_step(student, objective, optimizer, x, teacher_outputs, autocast)

    assert all(torch.isfinite(value) for value in terms.values())
    assert all(p.dtype == torch.float32 for p in list(student.parameters()) + list(objective.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))


@pytest.mark.parametrize("method_name", ["at", "vid", "vkd", "subdistill"])
def test_layer_gradients_reach_a_channels_last_student_in_its_layout(method_name, tiny_data, test_config):
    """A gradient that reaches a tapped map in another layout than the map's sends the student's backward
    down a slow strided path (17-24% of a channels-last student's speed, measured)."""
    x = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))["train_x"][:8]
    teacher, teacher_taps, student, objective = tiny_networks(method_name, test_config, x)
    teacher_outputs = OnlineTeacher(teacher_taps, objective)(x, torch.arange(len(x)))
    student.to(memory_format=torch.channels_last)
    arriving = []

    def record_gradient(loss, inputs):  # a hook registered after the objective's own, so it sees their result
        feature = inputs[0]
        assert feature.is_contiguous(memory_format=torch.channels_last)
        feature.register_hook(arriving.append)

    for loss in objective.layer_losses:
        loss.register_forward_pre_hook(record_gradient)
    sum(objective(student, x.contiguous(memory_format=torch.channels_last), teacher_outputs).values()).backward()

    assert len(arriving) == 4
    for gradient in arriving:
        assert gradient.is_contiguous(memory_format=torch.channels_last), tuple(gradient.stride())


def test_cached_maps_are_held_and_gathered_in_the_students_layout(tiny_data, test_config):
    """SubDistill's cached maps are held channels-last for a channels-last student and stay so when a batch is
    gathered (converting an 8-channel map per batch cost more than the loss itself, measured)."""
    x = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))["train_x"]
    _, teacher_taps, _, objective = tiny_networks("subdistill", test_config, x)
    targets = layer_targets(objective, teacher_features(teacher_taps, x, objective.sizes, torch.device("cpu")))
    held = objective.held_targets(targets, torch.channels_last)
    cached = CachedTeacher(TeacherOutputs(torch.zeros(len(x), 5), held), torch.device("cpu"))

    index = torch.tensor([5, 0, 17, 3])
    batch = cached(x[index], index)
    for full, gathered in zip(targets, batch.targets):
        assert gathered.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(gathered, full[index])
