"""Cached and online teacher outputs agree, and the cache is never used stale."""

import logging

import pytest
import torch

from subtask_distill.data.embedded import build_splits
from subtask_distill.io import save_arrays
from subtask_distill.methods import get_method, list_methods
from subtask_distill.models import create_model
from subtask_distill.models.build import save_checkpoint
from subtask_distill.runtime import autocast_context
from subtask_distill.study import Run
from subtask_distill.training.factory import TargetCache
from subtask_distill.training.jobs import RunFiles, cache_identity, split_tensors
from subtask_distill.training.loop import training_step
from subtask_distill.training.teacher_source import cached_tensors, resolve_mode

from .conftest import distiller_for, random_run_inputs

QUIET = logging.getLogger("test")
METHODS = list_methods()


def tiny_inputs(tiny_data, test_config, count=None):
    tensors = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))
    x = tensors["train_x"][:] if count is None else tensors["train_x"][:count]
    return random_run_inputs(test_config, "embedded", x)


@pytest.mark.parametrize("method_name", METHODS)
def test_cached_and_online_teacher_give_the_same_losses(method_name, tiny_data, test_config):
    inputs = tiny_inputs(tiny_data, test_config)
    cached = distiller_for(test_config, "embedded", method_name, inputs, "cached")
    online = distiller_for(test_config, "embedded", method_name, inputs, "online")
    assert (cached.teacher_mode, online.teacher_mode) == ("cached", "online")

    index = torch.tensor([5, 0, 17, 3, 9, 11])
    batch = inputs.train_x[index]
    student, objective = cached.student.eval(), cached.objective.eval()  # one student pass for both
    terms_cached = objective(student, batch, cached.data.teacher(batch, index))
    terms_online = objective(student, batch, online.data.teacher(batch, index))
    assert terms_cached.keys() == terms_online.keys()
    for name in terms_cached:
        torch.testing.assert_close(terms_cached[name], terms_online[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method_name", METHODS)
def test_the_factory_initialises_a_run_from_its_seed_alone(method_name, tiny_data, test_config):
    """What was built before (here a whole other run) does not change a run's initial weights."""
    inputs = tiny_inputs(tiny_data, test_config)
    first = distiller_for(test_config, "embedded", method_name, inputs)
    distiller_for(test_config, "embedded", "vid", inputs)
    again = distiller_for(test_config, "embedded", method_name, inputs)
    for a, b in ((first.student, again.student), (first.objective, again.objective)):
        state_a, state_b = a.state_dict(), b.state_dict()
        assert state_a.keys() == state_b.keys() and all(torch.equal(state_a[k], state_b[k]) for k in state_a)


@pytest.fixture
def key_files(tmp_path, tiny_data, test_config):
    spec = test_config["pairs"]["embedded"]["teacher"]
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "teacher.pt", create_model(spec["arch"], num_classes=10), spec)
    save_arrays(tmp_path / "splits.npz", build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))
    return RunFiles(tmp_path / "splits.npz", tmp_path / "logits.npz", teacher=tmp_path / "teacher.pt")


def test_cache_key_changes_with_teacher_rho_seed_data_and_method(key_files, tmp_path, tiny_data, test_config):
    spec = test_config["pairs"]["embedded"]["teacher"]
    run = Run("embedded", "at", "1", "1", 0)
    objective = {"teacher_spec": spec, "sizes": [(32, 32), (16, 16), (8, 8), (4, 4)], "method": "at", "options": {}}

    def key(files=key_files, run=run, **changed):
        return TargetCache(tmp_path, cache_identity(files, run)).key(**dict(objective, **changed))

    assert key() == key()
    assert key() == key(run=Run("embedded", "at", "1", "100", 0)), "lambda does not change the targets"
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "other_teacher.pt", create_model(spec["arch"], num_classes=10), spec)
    other_data = dict(test_config["data"], artifact=dict(test_config["data"]["artifact"], digit={"style": "strokes"}))
    save_arrays(tmp_path / "other_data.npz", build_splits(tiny_data[1], other_data, 1.0, seed=0))
    save_arrays(tmp_path / "rho_half.npz", build_splits(tiny_data[1], test_config["data"], 0.5, seed=0))
    save_arrays(tmp_path / "seed_1.npz", build_splits(tiny_data[1], test_config["data"], 1.0, seed=1))
    files = key_files
    variants = {
        "teacher checkpoint": key(files=RunFiles(files.splits, files.logits, teacher=tmp_path / "other_teacher.pt")),
        "data": key(files=RunFiles(tmp_path / "other_data.npz", files.logits, teacher=files.teacher)),
        "rho": key(files=RunFiles(tmp_path / "rho_half.npz", files.logits, teacher=files.teacher),
                   run=Run("embedded", "at", "0.5", "1", 0)),
        "seed": key(files=RunFiles(tmp_path / "seed_1.npz", files.logits, teacher=files.teacher),
                    run=Run("embedded", "at", "1", "1", 1)),
        "rho named only": key(run=Run("embedded", "at", "0.5", "1", 0)),
        "layers": key(teacher_spec=dict(spec, layers=["layer1", "layer2", "layer3", "layer3"])),
        "method": key(method="vid"),
        "subspace": key(files=RunFiles(files.splits, files.logits, teacher=files.teacher, subspaces=(tmp_path / "seed_1.npz",))),
    }
    assert all(k != key() for k in variants.values()), variants
    assert len(set(variants.values())) == len(variants)


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


@pytest.mark.parametrize("method_name", METHODS)
def test_every_method_trains_under_bf16_autocast(method_name, tiny_data, test_config):
    """CUDA's default bf16 autocast, exercised on the CPU: bf16 features reach every layer loss."""
    inputs = tiny_inputs(tiny_data, test_config, count=8)
    distiller = distiller_for(test_config, "embedded", method_name, inputs, "online", mixed_precision="bf16")
    student, objective, x = distiller.student, distiller.objective, inputs.train_x
    autocast = autocast_context("bf16", torch.device("cpu"))
    optimizer = torch.optim.AdamW(list(student.parameters()) + list(objective.parameters()), lr=1e-2)
    before = [p.detach().clone() for p in student.parameters()]

    terms = training_step(student, objective, optimizer, x, distiller.data.teacher(x, torch.arange(len(x))), autocast)

    assert all(torch.isfinite(value) for value in terms.values())
    assert all(p.dtype == torch.float32 for p in list(student.parameters()) + list(objective.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))


LAYER_METHODS = [name for name in METHODS if get_method(name).uses_layers]


@pytest.mark.parametrize("method_name", LAYER_METHODS)
def test_layer_gradients_reach_a_channels_last_student_in_its_layout(method_name, tiny_data, test_config):
    """A gradient that reaches a tapped map in another layout than the map's sends the student's backward
    down a slow strided path; the objective hands it back in the map's layout, whatever the layer loss does."""
    inputs = tiny_inputs(tiny_data, test_config, count=8)
    distiller = distiller_for(test_config, "embedded", method_name, inputs, "online", channels_last=True)
    student, objective, x = distiller.student, distiller.objective, inputs.train_x
    teacher_outputs = distiller.data.teacher(x, torch.arange(len(x)))
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


@pytest.mark.parametrize("method_name", LAYER_METHODS)
@pytest.mark.parametrize("mode", ["cached", "online"])
def test_map_targets_are_held_and_gathered_in_the_students_layout(method_name, mode, tiny_data, test_config):
    """Every layer target that is a feature map reaches the loss channels-last for a channels-last student,
    cached (gathered by rows) or online, with the same values as the plain gather."""
    inputs = tiny_inputs(tiny_data, test_config)
    plain = distiller_for(test_config, "embedded", method_name, inputs, mode, channels_last=False)
    held = distiller_for(test_config, "embedded", method_name, inputs, mode, channels_last=True)
    index = torch.tensor([5, 0, 17, 3])
    batch = inputs.train_x[index]
    for expected, gathered in zip(plain.data.teacher(batch, index).targets, held.data.teacher(batch, index).targets):
        if gathered.dim() == 4:
            assert gathered.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(gathered, expected, rtol=0, atol=0)
