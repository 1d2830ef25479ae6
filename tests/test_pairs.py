"""Every teacher-student pair: taps, alignment, every method's loss, and where gradients go."""

import copy
import math

import pytest
import torch
import yaml

from subtask_distill.analysis.features import classifier_of
from subtask_distill.config import validate_config
from subtask_distill.models.build import build_network
from subtask_distill.models.taps import FeatureTaps, tokens_to_map

from .conftest import REPO, distiller_for, random_run_inputs

LAYER_METHODS = ["at", "vid", "vkd", "subdistill"]
PAPER_PAIRS = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())["pairs"]
# (teacher C, H), (student C, H) per layer at 224 px, before alignment.
EXPECTED_SHAPES = {
    "resnet18_to_resnet18s": ([(64, 56), (128, 28), (256, 14), (512, 7)], [(32, 56), (32, 28), (32, 14), (24, 7)]),
    "wrn101_to_mbnv4": ([(256, 56), (512, 28), (1024, 14), (2048, 7)], [(64, 28), (96, 14), (128, 7), (128, 7)]),
    "vitb16_to_effformerv2": ([(768, 14)] * 4, [(32, 56), (48, 28), (96, 14), (176, 7)]),
}


def pair_config(test_config, spec, subtask_classes):
    config = copy.deepcopy(test_config)
    config["pairs"] = {"pair": spec}
    config["data"]["subtask_classes"] = subtask_classes
    return config


def check_pair(test_config, spec, image_size, subtask_classes, expected=None):
    config = pair_config(test_config, spec, subtask_classes)
    torch.manual_seed(0)
    x = torch.randn(2, 3, image_size, image_size)
    inputs = random_run_inputs(config, "pair", x)
    teacher_shapes = FeatureTaps(inputs.teacher, spec["teacher"]["layers"], named_in=inputs.teacher.model).shapes(x)
    student = build_network(spec["student"], num_classes=len(subtask_classes))
    student_shapes = FeatureTaps(student, spec["student"]["layers"]).shapes(x)
    if expected is not None:
        assert [(c, h) for c, h, _ in teacher_shapes] == expected[0]
        assert [(c, h) for c, h, _ in student_shapes] == expected[1]
    assert inputs.teacher_logits.shape == (2, len(subtask_classes))
    for name in LAYER_METHODS:
        distiller = distiller_for(config, "pair", name, inputs, "online")
        distiller.student.train()
        terms = distiller.objective(distiller.student, x, distiller.data.teacher(x, torch.arange(len(x))))
        assert set(terms) == {"kd", "layers"} and torch.isfinite(terms["layers"]), (name, terms)
        for size, t_shape, s_shape in zip(distiller.objective.sizes, teacher_shapes, student_shapes):
            assert size == (min(t_shape[1], s_shape[1]), min(t_shape[2], s_shape[2]))


def test_paper_pairs_section_is_valid():
    validate_config({"pairs": PAPER_PAIRS}, partial=True)


def test_embedded_pair_at_32_px(test_config):
    spec = test_config["pairs"]["embedded"]
    expected = ([(16, 32), (32, 16), (64, 8), (128, 4)], [(8, 32), (16, 16), (32, 8), (64, 4)])
    check_pair(test_config, spec, 32, [0, 1, 2, 3, 4], expected)


@pytest.mark.slow
@pytest.mark.parametrize("pair", list(PAPER_PAIRS))
def test_paper_pair_at_224_px(test_config, pair):
    check_pair(test_config, PAPER_PAIRS[pair], 224, [129, 130, 134, 135, 138], EXPECTED_SHAPES[pair])


def test_vit_tokens_become_a_grid_without_the_class_token():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # 1 class token + 2x2 grid
    grid = tokens_to_map(tokens)
    assert grid.shape == (2, 3, 2, 2)
    assert torch.equal(grid[0, :, 0, 0], tokens[0, 1]) and torch.equal(grid[1, :, 1, 1], tokens[1, 4])
    with pytest.raises(ValueError):
        tokens_to_map(torch.zeros(1, 7, 3))


def test_unknown_layer_name_is_reported():
    student = build_network({"arch": "embedded_cnn"}, num_classes=5)
    with pytest.raises(KeyError, match="stage9"):
        FeatureTaps(student, ["stage1", "stage9"])


@pytest.mark.parametrize("name", LAYER_METHODS)
def test_gradients_reach_the_student_through_every_layer_loss_and_never_the_teacher(test_config, name):
    spec = test_config["pairs"]["embedded"]
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    inputs = random_run_inputs(test_config, "embedded", x)
    distiller = distiller_for(test_config, "embedded", name, inputs)
    student, objective = distiller.student, distiller.objective
    targets = distiller.data.teacher(x, torch.arange(len(x))).targets
    student_convs = [getattr(student, layer)[0].weight for layer in spec["student"]["layers"]]
    for index, loss in enumerate(objective.layer_losses):
        student.zero_grad()
        _, student_features = objective.student_taps(x)
        loss(student_features[index], targets[index]).backward()
        # The loss of layer i trains the student's stages up to i, and none after it.
        for stage, weight in enumerate(student_convs):
            reached = weight.grad is not None and weight.grad.abs().sum() > 0
            assert reached == (stage <= index), (name, index, stage)
    assert all(p.grad is None for p in inputs.teacher.parameters())
    assert all(not t.requires_grad for t in targets)


def authors_resnet18s(num_classes: int = 5) -> torch.nn.Module:
    """ResNet18-S as the authors' construct_student_resnet18_varying_dims builds it from torchvision's ResNet18."""
    from torchvision.models import resnet

    model = resnet._resnet(resnet.BasicBlock, [2, 2, 2, 2], weights=None, progress=False, num_classes=num_classes)
    model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = torch.nn.BatchNorm2d(64)
    model.inplanes = 64
    for index, (width, stride) in enumerate(zip((32, 32, 32, 24), (1, 2, 2, 2)), start=1):
        setattr(model, f"layer{index}", model._make_layer(resnet.BasicBlock, width, 2, stride=stride))
    model.fc = torch.nn.Linear(model.inplanes, num_classes)
    return model


def test_resnet18s_by_default_is_the_authors_network():
    ours = build_network({"arch": "resnet18s"}, num_classes=5)
    theirs = authors_resnet18s()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert sum(p.numel() for p in ours.parameters()) == 157_997
    assert ours.conv1.out_channels == 64 and ours.layer1[0].downsample[0].weight.shape == (32, 64, 1, 1)
    x = torch.randn(2, 3, 64, 64)
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.eval()(x), theirs.eval()(x))  # the same function, not only the same shapes


def test_resnet18s_keeps_pytorchs_default_init_or_redraws_convolutions_as_torchvision():
    torch.manual_seed(0)
    default = build_network({"arch": "resnet18s"}, num_classes=5)
    kaiming = build_network({"arch": "resnet18s", "kwargs": {"stem_width": None, "init": "kaiming"}}, num_classes=5)
    assert sum(p.numel() for p in kaiming.parameters()) == 141_901 and kaiming.conv1.out_channels == 32
    for model, default_init in ((default, True), (kaiming, False)):
        weight = model.layer2[0].conv1.weight.detach()  # 3x3, 32 -> 32: fan-in 288, fan-out 288
        bound = 1 / math.sqrt(288)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert (weight.abs().max() <= bound) == default_init
        expected_std = bound / math.sqrt(3) if default_init else math.sqrt(2 / 288)
        assert weight.std().item() == pytest.approx(expected_std, rel=0.1)


def test_efficientformer_student_averages_two_heads_by_default_or_has_one():
    torch.manual_seed(0)
    two = build_network({"arch": "efficientformerv2_s0"}, num_classes=5).eval()
    one = build_network({"arch": "efficientformerv2_s0", "kwargs": {"distillation": False}}, num_classes=5).eval()
    assert two.head_dist is not None and one.head_dist is None
    x = torch.randn(1, 3, 224, 224)
    features = two.forward_head(two.forward_features(x), pre_logits=True)
    assert torch.allclose(two(x), (two.head(features) + two.head_dist(features)) / 2, atol=1e-6)
    assert classifier_of(two) is two.head  # the analysis reads the features both heads share
