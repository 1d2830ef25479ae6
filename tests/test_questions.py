"""The open questions as configuration: selection rules, layer subsets, and a tiny study of a natural artifact
chosen by the spurious rule, end to end through Snakemake."""

import copy
import csv
import json
import logging

import numpy as np
import pytest
import torch
import yaml

from subtask_distill.methods import get_method
from subtask_distill.models import create_model
from subtask_distill.reporting.render import markdown, per_rule
from subtask_distill.reporting.report import study_settings
from subtask_distill.reporting.runs import run_rows
from subtask_distill.reporting.table import build_table, chosen_runs
from subtask_distill.study import Run, layer_positions, parse_variant, runs
from subtask_distill.training.factory import build_distiller
from subtask_distill.training.loop import DistillationData, TensorAccuracy, TensorBatches, train_student
from subtask_distill.training.objective import DistillationObjective, TeacherOutputs
from subtask_distill.training.teacher_source import CachedTeacher

from .conftest import REPO, distiller_for, random_run_inputs, run_snakemake, write_config


def row(rule, lam, seed, val, test, method="at"):
    return {"selection": rule, "pair": "p", "rho": "1", "method": method, "lambda": lam, "seed": seed,
            "val_acc": val, "test_acc": test}


def test_each_selection_rule_chooses_lambda_star_on_its_own_validation_accuracies():
    """Hand-made accuracies: oracle validation prefers lambda 100, spurious validation (the shortcut pays) lambda 1."""
    runs_csv = [
        row("oracle", "1", 0, 40.0, 35.0), row("oracle", "1", 1, 42.0, 37.0),
        row("oracle", "100", 0, 70.0, 68.0), row("oracle", "100", 1, 72.0, 70.0),
        row("spurious", "1", 0, 99.0, 30.0), row("spurious", "1", 1, 98.0, 32.0),
        row("spurious", "100", 0, 90.0, 66.0), row("spurious", "100", 1, 91.0, 69.0),
    ]
    table = build_table(runs_csv, {("p", "1"): 95.0})
    by_rule = {r["selection"]: r for r in table}
    assert (by_rule["oracle"]["lambda"], by_rule["oracle"]["test_acc_mean"]) == ("100", 69.0)
    assert (by_rule["spurious"]["lambda"], by_rule["spurious"]["test_acc_mean"]) == ("1", 31.0)
    assert chosen_runs(table, "spurious") == {("p", "at", "1", "1")}
    text = per_rule(markdown, table, ["at"], {"at": "AT"})
    assert "(oracle)" in text and "(spurious)" in text and text.index("(oracle)") < text.index("(spurious)")


def test_runs_csv_holds_a_row_per_selection_rule_with_the_runs_own_rule_first():
    metrics = {"pair": "p", "method": "at-L1", "layers": "1", "rho": "1", "lambda": "1", "seed": 0, "selection": "spurious",
               "best_epoch": 3, "val_acc": 90.0, "test_acc": 40.0, "epochs_run": 5, "wall_time_s": 1.0,
               "selections": {"oracle": {"best_epoch": 5, "val_acc": 60.0, "test_acc": 55.0},
                              "spurious": {"best_epoch": 3, "val_acc": 90.0, "test_acc": 40.0}}}
    rows = run_rows(metrics)
    assert [(r["selection"], r["best_epoch"], r["test_acc"]) for r in rows] == [("spurious", 3, 40.0), ("oracle", 5, 55.0)]
    assert rows[0]["method"] == "at-L1" and rows[0]["layers"] == "1"


def test_the_loop_keeps_a_best_epoch_per_selection_rule_from_one_training():
    """Scripted validation accuracies: the oracle set peaks at epoch 2, the spurious one at epoch 3."""
    x, y = torch.randn(8, 3, 32, 32), torch.zeros(8, dtype=torch.long)
    scripted = {"oracle": iter([10.0, 50.0, 20.0]), "spurious": iter([30.0, 40.0, 90.0])}
    data = DistillationData(
        TensorBatches(x, 4), CachedTeacher(TeacherOutputs(torch.randn(8, 5)), torch.device("cpu")),
        val_accuracy=lambda model, device: next(scripted["oracle"]),
        test_accuracy=TensorAccuracy(x, y),
        other_rules={"spurious": lambda model, device: next(scripted["spurious"])},
    )
    cfg = {"epochs": 3, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0, "lr_step": 10, "lr_gamma": 0.5}
    outcome = train_student(create_model("embedded_cnn", num_classes=5), DistillationObjective(get_method("kd"), 4.0),
                            data, cfg, torch.Generator().manual_seed(0), logging.getLogger("test"))
    assert (outcome.best_epoch, outcome.val_acc) == (2, 50.0)
    assert (outcome.others["spurious"].best_epoch, outcome.others["spurious"].val_acc) == (3, 90.0)
    assert [h["val_acc_spurious"] for h in outcome.history] == [30.0, 40.0, 90.0]


def test_a_layer_subset_of_one_uses_exactly_one_layer_loss_at_that_layer(test_config):
    x = torch.randn(6, 3, 32, 32)
    inputs = random_run_inputs(test_config, "embedded", x)
    config = copy.deepcopy(test_config)
    subset = build_distiller(config, Run("embedded", "subdistill", "1", "1", 0, layers="2"), inputs, torch.device("cpu"))
    full = distiller_for(config, "embedded", "subdistill", inputs)
    assert len(subset.objective.layer_losses) == 1 and len(full.objective.layer_losses) == 4
    assert subset.objective.layer_losses[0].teacher_shape == full.objective.layer_losses[1].teacher_shape
    assert subset.objective.student_taps.layer_names == ["stage2"]


def test_layer_subsets_are_their_own_runs_paths_and_table_columns(test_config):
    config = dict(test_config, layer_subsets=[[1], [1, 2], "all"])
    grid = list(runs(config, {"kd": False, "at": True, "vid": True, "vkd": True, "subdistill": True}))
    variants = list(dict.fromkeys(run.variant for run in grid))
    assert variants[:4] == ["kd", "at-L1", "at-L12", "at"]
    assert sum(run.method == "kd" for run in grid) == 2 * 2  # output-only KD has no layers to subset
    assert Run("p", "at", "1", "1", 0, "12").path == "runs/p/at-L12/rho1/lam1/seed0"
    assert parse_variant("subdistill-L12") == ("subdistill", "12") and parse_variant("subdistill") == ("subdistill", "all")
    assert layer_positions("12", 4) == [0, 1] and layer_positions("all", 4) == [0, 1, 2, 3]
    table = build_table([row("oracle", "1", 0, 50.0, 40.0, "at-L1"), row("oracle", "1", 0, 60.0, 45.0, "at")], {})
    assert [r["method"] for r in table] == ["at-L1", "at"]


def test_the_report_says_what_sets_a_study_apart(test_config):
    assert study_settings(test_config) == [study_settings(test_config)[0]]  # the paper's setting: only the artifact
    assert "digit" in study_settings(test_config)[0]
    config = copy.deepcopy(test_config)
    config["data"]["artifact"].update(kind="watermark", target_class=2)
    config.update(selection=["spurious", "oracle"], layer_subsets=[[1], "all"])
    config["teacher_training"]["artifact_rho"] = 0.5
    lines = study_settings(config)
    assert "watermark" in lines[0] and "class 2" in lines[0]
    assert any("spurious, oracle" in line for line in lines)
    assert any("biased teacher" in line for line in lines)
    assert any("layers 1" in line for line in lines)


@pytest.mark.slow
def test_a_tiny_study_of_a_watermark_chosen_by_the_spurious_rule_runs_through_snakemake(tmp_path):
    config = yaml.safe_load((REPO / "configs" / "test.yaml").read_text())
    config.update(study="tiny_question", rhos=[1], methods={"kd": {}, "at": {}}, lambdas=[1],
                  selection=["spurious", "oracle"], layer_subsets=[[1], "all"])
    config["data"]["artifact"] = {"kind": "watermark", "target_class": 0}
    result = run_snakemake(tmp_path, "--cores", "2", "all", configfile=write_config(tmp_path / "q.yaml", config))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = tmp_path / "results" / "tiny_question"
    with open(results / "table1.csv") as handle:
        cells = [(r["selection"], r["method"]) for r in csv.DictReader(handle)]
    assert cells == [(rule, method) for rule in ("spurious", "oracle") for method in ("kd", "at-L1", "at")]
    metrics = json.loads((results / "runs/embedded/at-L1/rho1/lam1/seed0/metrics.json").read_text())
    assert metrics["selection"] == "spurious" and set(metrics["selections"]) == {"spurious", "oracle"}
    assert all("val_acc_oracle" in epoch for epoch in metrics["history"])
    splits = np.load(results / "data/rho1/seed0.npz")
    assert np.array_equal(splits["val_spurious_artifact"] >= 0, splits["val_y"] == 0)
    report = (results / "report.html").read_text()
    assert "artifact: watermark" in report and "selection rules: spurious, oracle" in report


QUESTIONS = sorted((REPO / "configs" / "questions").glob("*.yaml"))


@pytest.mark.parametrize("overlay", QUESTIONS, ids=lambda path: path.stem)
def test_every_question_is_a_valid_study_of_its_own(overlay):
    """Each overlay merged onto its base (config.yaml, or configs/paper.yaml for paper_*) as Snakemake merges
    --configfile files: a valid config writing to its own results/<study>/."""
    from snakemake.utils import update_config

    from subtask_distill.config import check_semantics, validate_config

    base = REPO / ("configs/paper.yaml" if overlay.stem.startswith("paper_") else "config.yaml")
    config = yaml.safe_load(base.read_text())
    update_config(config, yaml.safe_load(overlay.read_text()))
    config = validate_config(config)
    check_semantics(config)
    assert config["study"] not in ("embedded", "paper") and config["study"].endswith(overlay.stem.removeprefix("paper_"))
    assert len(config["seeds"]) >= 2


def test_compare_studies_draws_a_panel_per_question_from_table_csvs(tmp_path):
    import subprocess
    import sys

    from subtask_distill.reporting.table import table_csv

    rows = [{"selection": rule, "pair": "p", "rho": "1", "method": method, "lambda": "1", "n_seeds": 2, "val_acc_mean": 50.0,
             "test_acc_mean": acc, "test_acc_se": 1.0, "teacher_test_acc": 90.0}
            for rule, method, acc in (("oracle", "kd", 30.0), ("oracle", "at-L1", 60.0), ("spurious", "kd", 25.0))]
    table = tmp_path / "table1.csv"
    table.write_text(table_csv(rows))
    out = tmp_path / "compare.png"
    command = [sys.executable, str(REPO / "scripts" / "compare_studies.py"), "--out", str(out),
               "--panel", "rules", f"oracle={table}#oracle", f"spurious={table}#spurious", "--panel", "layers", f"first={table}@L1"]
    assert subprocess.run(command, capture_output=True).returncode == 0 and out.stat().st_size > 1000
    missing = subprocess.run([*command[:4], "--panel", "none", f"x={table}@L12"], capture_output=True, text=True)
    assert missing.returncode != 0 and "no rows at rho 1" in missing.stderr
