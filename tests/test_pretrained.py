"""Pretrained teachers: torchvision weights from the hub cache, local checkpoints, prefetching.

Nothing here touches the network: weight files are fabricated where torch.hub
keeps them (TORCH_HOME points into a tmp folder) and downloads are patched out.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from subtask_distill.models import create_model
from subtask_distill.models.build import load_subtask_teacher
from subtask_distill.models.pretrained import (
    TeacherWeightsError,
    cached_weight_file,
    load_pretrained_teacher,
    load_teacher_state,
    prefetch,
    torchvision_weights,
)

REPO = Path(__file__).resolve().parents[1]
RESNET18_WEIGHTS = "ResNet18_Weights.IMAGENET1K_V1"
SUBTASK = [129, 130, 134, 135, 138]
PAIR = "p"


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty torch.hub cache under tmp_path, and downloads that fail the test if attempted."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def resnet18_spec(**source) -> dict:
    return {"arch": "resnet18", "num_classes": 1000, "layers": ["layer1", "layer2", "layer3", "layer4"], **source}


def small_spec(checkpoint: Path, arch: str = "embedded_cnn") -> dict:
    """A teacher whose architecture does not matter to the test: a small registry model."""
    return {"arch": arch, "num_classes": 5, "layers": ["stage1"], "checkpoint": str(checkpoint)}


def random_state(arch: str, num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return create_model(arch, num_classes=num_classes).state_dict()


def assert_same_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_cached_torchvision_weights_load_offline(offline_hub):
    weights = torchvision_weights(RESNET18_WEIGHTS, PAIR)
    path = cached_weight_file(weights)
    assert path == offline_hub / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    state = random_state("resnet18", 1000)
    torch.save(state, path)

    model = load_pretrained_teacher(resnet18_spec(weights=RESNET18_WEIGHTS), PAIR)

    assert_same_state(model, state)
    assert not model.training


def test_missing_weights_name_the_cache_file_and_prefetch(offline_hub):
    with pytest.raises(TeacherWeightsError) as error:
        load_teacher_state(resnet18_spec(weights=RESNET18_WEIGHTS), PAIR)
    message = str(error.value)
    assert str(offline_hub / "resnet18-f37072fd.pth") in message
    assert "prefetch" in message and "TORCH_HOME" in message and f"pairs.{PAIR}.teacher.checkpoint" in message


@pytest.mark.parametrize("name", ["ResNet18_Weights.NO_SUCH", "NoSuch_Weights.IMAGENET1K_V1", "resnet18"])
def test_unknown_weights_name_names_the_config_key(name):
    with pytest.raises(TeacherWeightsError, match=rf"pairs\.{PAIR}\.teacher\.weights.*{RESNET18_WEIGHTS}"):
        load_teacher_state(resnet18_spec(weights=name), PAIR)


def test_weights_of_another_architecture_are_refused():
    with pytest.raises(TeacherWeightsError, match="ResNet50_Weights.IMAGENET1K_V1.* not weights of resnet18"):
        load_teacher_state(resnet18_spec(weights="ResNet50_Weights.IMAGENET1K_V1"), PAIR)


@pytest.mark.parametrize("source", [{}, {"weights": RESNET18_WEIGHTS, "checkpoint": "teacher.pt"}])
def test_exactly_one_weight_source(source):
    with pytest.raises(
        TeacherWeightsError, match=rf"pairs\.{PAIR}\.teacher\.weights or pairs\.{PAIR}\.teacher\.checkpoint"
    ):
        load_teacher_state(resnet18_spec(**source), PAIR)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda state: state,
        lambda state: {"state_dict": state, "epoch": 3},
        lambda state: {"model": state},
        lambda state: {f"module.{key}": value for key, value in state.items()},
        lambda state: {"state_dict": {f"module.{key}": value for key, value in state.items()}},
    ],
    ids=["plain", "state_dict", "model", "module_prefix", "state_dict_module_prefix"],
)
def test_local_checkpoint_formats(tmp_path, wrap):
    state = random_state("embedded_cnn", 5)
    path = tmp_path / "teacher.pth"
    torch.save(wrap(state), path)

    assert_same_state(load_pretrained_teacher(small_spec(path), PAIR), state)


def test_missing_checkpoint_names_path_and_key(tmp_path):
    path = tmp_path / "absent.pth"
    with pytest.raises(TeacherWeightsError, match=rf"pairs\.{PAIR}\.teacher\.checkpoint.*{path}"):
        load_teacher_state(small_spec(path), PAIR)


@pytest.mark.parametrize("content", [b"not a torch file", b""], ids=["garbage", "empty"])
def test_corrupt_checkpoint_names_path(tmp_path, content):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(content)
    with pytest.raises(TeacherWeightsError, match=f"cannot read teacher weights {path}"):
        load_teacher_state(small_spec(path), PAIR)


def test_file_without_state_dict_names_path(tmp_path):
    path = tmp_path / "metrics.pth"
    torch.save({"epoch": 3, "accuracy": 0.9}, path)
    with pytest.raises(TeacherWeightsError, match=f"{path} holds no state dict"):
        load_teacher_state(small_spec(path), PAIR)


def test_wrong_architecture_names_offending_keys(tmp_path):
    path = tmp_path / "cnn.pth"
    torch.save(random_state("embedded_cnn", 5), path)
    with pytest.raises(TeacherWeightsError) as error:
        load_pretrained_teacher(small_spec(path, arch="embedded_resnet"), PAIR)
    message = str(error.value)
    assert str(path) in message and "embedded_resnet" in message
    assert "missing" in message and "unexpected" in message
    assert "stage1" in message  # a key of the saved CNN the ResNet does not have


def test_wrong_head_size_names_the_shape_mismatch(tmp_path):
    path = tmp_path / "cnn10.pth"
    torch.save(random_state("embedded_cnn", 10), path)
    with pytest.raises(TeacherWeightsError, match=r"wrong shape.*\(10,"):
        load_pretrained_teacher(small_spec(path), PAIR)


def test_prefetch_downloads_once_into_the_hub_cache(offline_hub, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    spec = resnet18_spec(weights=RESNET18_WEIGHTS)

    expected = offline_hub / "resnet18-f37072fd.pth"
    assert prefetch(spec, PAIR) == expected
    assert prefetch(spec, PAIR) == expected  # cached: not fetched again
    assert calls == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd")]
    assert expected.read_bytes() == b"weights"


def test_prefetch_checks_local_checkpoints(tmp_path):
    path = tmp_path / "teacher.pth"
    with pytest.raises(TeacherWeightsError, match=str(path)):
        prefetch(small_spec(path), PAIR)
    path.write_bytes(b"present")
    assert prefetch(small_spec(path), PAIR) is None


# --- the scripts, end to end -------------------------------------------------------------------------------------


def pairs_config(teacher: dict) -> dict:
    return {"pairs": {PAIR: {"teacher": teacher, "student": {"arch": "resnet18s", "layers": teacher["layers"]}}}}


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *args], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def test_import_teacher_writes_a_checkpoint_load_subtask_teacher_reads(tmp_path):
    state = random_state("resnet18", 1000)
    source = tmp_path / "resnet18_trained.pth"
    torch.save({"state_dict": state}, source)
    spec = resnet18_spec(checkpoint=str(source))
    out, metrics = tmp_path / "teacher.pt", tmp_path / "teacher_metrics.json"

    run_script(
        "import_teacher.py",
        "--config",
        json.dumps(pairs_config(spec)),
        "--pair",
        PAIR,
        "--out",
        str(out),
        "--metrics",
        str(metrics),
    )

    teacher = load_subtask_teacher(out, spec, SUBTASK, torch.device("cpu"))
    full = create_model("resnet18", num_classes=1000)
    full.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), full.eval()(x)[:, SUBTASK])
    record = json.loads(metrics.read_text())
    assert record["source"]["file"] == str(source)
    assert len(record["source"]["sha256"]) == 64
    assert record["parameters"] == sum(value.numel() for value in full.parameters())


def test_prefetch_script_lists_cached_weights(tmp_path, offline_hub):
    cached = offline_hub / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"already fetched")  # present, so nothing is downloaded
    summary = tmp_path / "prefetch.json"

    run_script(
        "prefetch.py",
        "--config",
        json.dumps(pairs_config(resnet18_spec(weights=RESNET18_WEIGHTS))),
        "--out",
        str(summary),
    )

    files = json.loads(summary.read_text())["files"]
    assert files == [
        {"config_key": f"pairs.{PAIR}.teacher.weights", "path": str(cached), "bytes": cached.stat().st_size}
    ]
