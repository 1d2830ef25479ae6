import logging

import torch

from subtask_distill.data.embedded import build_splits, synthesize
from subtask_distill.data.tensors import images_to_tensor
from subtask_distill.methods import get_method
from subtask_distill.models import SubtaskHead, create_model
from subtask_distill.runtime import seed_everything
from subtask_distill.training.classifier import train_classifier
from subtask_distill.training.evaluate import predict_logits
from subtask_distill.training.jobs import split_tensors
from subtask_distill.training.loop import DistillationData, TensorAccuracy, TensorBatches, train_student
from subtask_distill.training.objective import DistillationObjective, TeacherOutputs
from subtask_distill.training.teacher_source import CachedTeacher

QUIET = logging.getLogger("test")


def fixed_inputs(tensors, teacher, batch_size) -> DistillationData:
    return DistillationData(
        TensorBatches(tensors["train_x"], batch_size), teacher,
        TensorAccuracy(tensors["val_x"], tensors["val_y"]), TensorAccuracy(tensors["test_x"], tensors["test_y"]),
    )


def test_short_distillation_beats_chance(test_config):
    """A teacher trained briefly, then a student distilled from it: well above 20% (chance).

    Large objects make the textures easy, so a few seconds of training suffice.
    """
    data_cfg = dict(test_config["data"], teacher_train_per_class=120, pool_per_class=60, texture={"radius": [7, 11]})
    teacher_set, base = synthesize(data_cfg)
    mean, std = base["channel_mean"], base["channel_std"]

    teacher = create_model("embedded_resnet", num_classes=10)
    x = images_to_tensor(teacher_set["train_x"], mean, std)
    y = torch.from_numpy(teacher_set["train_y"])
    train_classifier(teacher, x, y, {"epochs": 6, "batch_size": 32, "lr": 4e-3, "weight_decay": 0.0},
                     seed_everything(0), QUIET)
    head = SubtaskHead(teacher, data_cfg["subtask_classes"]).eval()

    tensors = split_tensors(build_splits(base, data_cfg, 0.0, seed=0))
    teacher = CachedTeacher(TeacherOutputs(predict_logits(head, tensors["train_x"])), torch.device("cpu"))
    data = fixed_inputs(tensors, teacher, batch_size=16)
    cfg = {"epochs": 8, "batch_size": 16, "lr": 3e-3, "weight_decay": 0.0, "lr_step": 10, "lr_gamma": 0.5}
    outcome = train_student(create_model("embedded_cnn", num_classes=5), DistillationObjective(get_method("kd"), 4.0),
                            data, cfg, seed_everything(0), QUIET)
    assert outcome.test_acc > 50.0
    assert 1 <= outcome.best_epoch <= 8 and len(outcome.history) == 8
    assert outcome.val_acc == max(h["val_acc"] for h in outcome.history)


def test_same_seed_gives_identical_training(tiny_data, test_config):
    _, base = tiny_data
    tensors = split_tensors(build_splits(base, test_config["data"], 1.0, seed=0))
    targets = torch.randn(len(tensors["train_x"]), 5, generator=torch.Generator().manual_seed(0))
    data = fixed_inputs(tensors, CachedTeacher(TeacherOutputs(targets), torch.device("cpu")), batch_size=16)
    cfg = {"epochs": 2, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "lr_step": 10, "lr_gamma": 0.5}

    def run():
        generator = seed_everything(5)
        student = create_model("embedded_cnn", num_classes=5)
        return train_student(student, DistillationObjective(get_method("kd"), 4.0), data, cfg, generator, QUIET)

    a, b = run(), run()
    assert a.history == [dict(h, seconds=a.history[i]["seconds"]) for i, h in enumerate(b.history)]
    for key in a.best_state:
        assert torch.equal(a.best_state[key], b.best_state[key]), key
