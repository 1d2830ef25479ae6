"""End to end through Snakemake: the tiny study, and a dry run of the default one."""

import csv
import json

import pytest

from .conftest import REPO, run_snakemake

pytestmark = pytest.mark.slow


def test_dry_run_of_the_default_config_lists_the_grid(workdir):
    result = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # 3 rho x 2 seeds for each per-split job; output-only KD has one lambda.
    assert counts["contaminate"] == 6 and counts["teacher_logits"] == 6
    assert counts["train_student"] == 6 and counts["train_teacher"] == 1 and counts["table"] == 1


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = run_snakemake(workdir, "--cores", "2", "all", configfile=REPO / "configs" / "test.yaml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "results" / "test"


def test_tiny_study_writes_a_table_row_per_pair_rho_and_method(tiny_study):
    with open(tiny_study / "table1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["pair"], float(r["rho"]), r["method"]) for r in rows] == [("embedded", 0.0, "kd"), ("embedded", 1.0, "kd")]
    for row in rows:
        assert int(row["n_seeds"]) == 2
        assert 0.0 <= float(row["test_acc_mean"]) <= 100.0
        assert 0.0 <= float(row["teacher_test_acc"]) <= 100.0
    assert "Output only" in (tiny_study / "table1.md").read_text()


def test_every_run_records_metrics_and_provenance(tiny_study):
    metrics_files = sorted((tiny_study / "runs").glob("*/*/rho*/lam*/seed*/metrics.json"))
    assert len(metrics_files) == 4
    for path in metrics_files:
        metrics = json.loads(path.read_text())
        assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
        assert set(metrics["provenance"]) >= {"config", "config_sha256", "versions", "git"}
        assert metrics["provenance"]["versions"]["torch"]
        assert (path.parent / "student.pt").is_file()


def test_every_job_left_a_log_and_a_benchmark(tiny_study):
    logs = list((tiny_study / "logs").rglob("*.log"))
    benchmarks = list((tiny_study / "benchmarks").rglob("*.tsv"))
    assert len(logs) == len(benchmarks) >= 16
    training_log = next((tiny_study / "logs" / "train_student").rglob("*.log")).read_text()
    assert "epoch 2/2" in training_log and "val_acc" in training_log


def test_teacher_metrics_and_preview(tiny_study):
    teacher = json.loads((tiny_study / "teachers" / "embedded" / "teacher_metrics.json").read_text())
    assert {"all_classes_test_acc", "subtask_test_acc"} <= set(teacher)
    assert (tiny_study / "data" / "preview.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_has_nothing_to_do(tiny_study):
    workdir = tiny_study.parents[1]
    result = run_snakemake(workdir, "-n", "all", configfile=REPO / "configs" / "test.yaml")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
