import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


@pytest.fixture(scope="session")
def test_config() -> dict:
    """The tiny study of configs/test.yaml, validated and with defaults filled in."""
    from subtask_distill.config import validate_config

    return validate_config(yaml.safe_load((REPO / "configs" / "test.yaml").read_text()))


@pytest.fixture
def config(test_config) -> dict:
    """A private copy of the tiny config that a test may modify."""
    return copy.deepcopy(test_config)


@pytest.fixture(scope="session")
def tiny_data(test_config):
    """(teacher set, subtask base) of the tiny study."""
    from subtask_distill.data.embedded import synthesize

    return synthesize(test_config["data"])


def run_snakemake(workdir: Path, *args: str, configfile: Path | None = None, timeout: int = 600):
    """Run the workflow in ``workdir`` (so results/ lands there); return the completed process."""
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    # Jobs call plain `python`: put this interpreter's environment first on PATH, as activating it would.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def workdir(tmp_path) -> Path:
    """An empty folder holding a copy of the default config.yaml (the Snakefile's configfile)."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def random_subspaces(teacher_shapes, student_shapes, seed: int = 0):
    """Orthonormal bases of the right shapes, with random means: a stand-in for fitted SubDistill subspaces."""
    import torch

    from subtask_distill.methods.subspace import LayerSubspace

    generator = torch.Generator().manual_seed(seed)
    subspaces = []
    for (c_t, *_), (k, *_) in zip(teacher_shapes, student_shapes):
        basis = torch.linalg.qr(torch.randn(c_t, k, generator=generator))[0]
        subspaces.append(LayerSubspace(basis, torch.randn(c_t, generator=generator), torch.rand(k, generator=generator) + 0.5,
                                       torch.ones(k), 1.0))
    return subspaces


def random_run_inputs(config: dict, pair: str, x, y=None):
    """One run's inputs with ``x`` (and labels ``y``) as every split: a randomly initialised subtask teacher
    (seed 0), its logits on ``x`` and random subspaces; what ``build_distiller`` needs, without files."""
    import torch

    from subtask_distill.models import SubtaskHead
    from subtask_distill.models.build import build_network
    from subtask_distill.models.taps import FeatureTaps
    from subtask_distill.training.factory import RunInputs

    spec, classes = config["pairs"][pair], config["data"]["subtask_classes"]
    torch.manual_seed(0)
    teacher_net = build_network(spec["teacher"], num_classes=spec["teacher"].get("num_classes") or len(classes))
    teacher = SubtaskHead(teacher_net, classes).eval().requires_grad_(False)
    student = build_network(spec["student"], num_classes=len(classes))
    teacher_taps = FeatureTaps(teacher, spec["teacher"]["layers"], named_in=teacher.model)
    subspaces = random_subspaces(teacher_taps.shapes(x[:1]), FeatureTaps(student, spec["student"]["layers"]).shapes(x[:1]))
    teacher_taps.remove()
    with torch.no_grad():
        logits = teacher(x[:])
    y = torch.zeros(len(x), dtype=torch.long) if y is None else y
    return RunInputs(val_x=x, val_y=y, test_x=x, test_y=y, train_x=x, teacher_logits=logits, teacher=teacher,
                     subspaces={"subdistill": subspaces, "pca": subspaces})


def distiller_for(config: dict, pair: str, method: str, inputs, teacher_outputs: str = "cached", **training):
    """``build_distiller`` for one run of ``method`` at lambda 1 and seed 0, with training settings overridden."""
    import torch

    from subtask_distill.study import Run
    from subtask_distill.training.factory import build_distiller

    config = copy.deepcopy(config)
    config["training"].update(teacher_outputs=teacher_outputs, **training)
    config["methods"].setdefault(method, {})  # a registered method the config does not list: default options
    return build_distiller(config, Run(pair, method, "1", "1", 0), inputs, torch.device("cpu"))
