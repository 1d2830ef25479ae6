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
