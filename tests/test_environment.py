"""envs/study.yaml (the jobs' environment under --sdm conda) lists every third-party package the jobs import."""

import ast
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata

import pytest
import tomllib
import yaml

from .conftest import REPO, SNAKEMAKE

# Imported by the workflow (Snakemake's own process), not by a job.
WORKFLOW_ONLY = {"snakemake"}


def imported_modules(folder):
    """Top-level names of every module imported anywhere (also inside functions) by the .py files under folder."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_packages() -> set[str]:
    env = yaml.safe_load((REPO / "envs" / "study.yaml").read_text())
    specs = []
    for entry in env["dependencies"]:
        specs.extend(entry["pip"] if isinstance(entry, dict) else [entry])
    return {normalise(re.split(r"[<>=!~ ]", spec, maxsplit=1)[0]) for spec in specs}


def third_party_distributions() -> set[str]:
    """The distributions that provide what the package and its scripts import."""
    modules = imported_modules(REPO / "src") | imported_modules(REPO / "scripts")
    modules -= set(sys.stdlib_module_names) | {"subtask_distill"}
    providers = metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in providers)
    assert not missing, f"imported but not installed here: {missing}"
    return {normalise(providers[m][0]) for m in modules}


def test_the_job_environment_lists_every_imported_package():
    listed = environment_packages()
    needed = third_party_distributions() - WORKFLOW_ONLY
    assert needed <= listed, f"envs/study.yaml lacks {sorted(needed - listed)}"


def test_the_job_environment_and_the_package_declare_the_same_dependencies():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {normalise(re.split(r"[<>=!~ ]", spec, maxsplit=1)[0]) for spec in declared}
    assert names - WORKFLOW_ONLY == environment_packages() - {"python", "pip"}


@pytest.mark.slow
def test_jobs_find_the_workflows_own_package_without_an_install(tmp_path):
    """A copy of the workflow runs a job with a python that cannot import the installed package (as in an
    environment built by --sdm conda): the job imports the copy's own src/ through the shell prefix."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("Snakefile", "rules", "scripts", "src", "envs", "report", "config.yaml", "configs"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, checkout / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `python` without this checkout's src/ (where the editable install points) on its path.
    hide = f"import sys, runpy; sys.path[:] = [p for p in sys.path if p != {str(REPO / 'src')!r}]; "
    (bin_dir / "python").write_text(
        f'#!/bin/sh\nexec {sys.executable} -c "{hide}sys.argv = sys.argv[1:]; '
        f"runpy.run_path(sys.argv[0], run_name='__main__')\" \"$@\"\n"
    )
    (bin_dir / "python").chmod(0o755)
    probe = tmp_path / "probe.py"
    probe.write_text("import subtask_distill.config as c; print(c.__file__)")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    hidden = subprocess.run(["python", str(probe)], capture_output=True, text=True, env=env)
    assert hidden.returncode != 0 and "No module named 'subtask_distill'" in hidden.stderr

    result = subprocess.run(
        [SNAKEMAKE, "results/test/data/subtask_base.npz", "--snakefile", str(checkout / "Snakefile"),
         "--directory", str(tmp_path), "--cores", "1", "--configfile", str(checkout / "configs" / "test.yaml")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results" / "test" / "data" / "subtask_base.npz").exists()
