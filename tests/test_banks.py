"""Banks: students of one (pair, rho, seed) (the lambdas of one method, or every method and lambda) trained on
one stream of batches with one teacher pass per batch end exactly as each would alone; a diverging student
stops alone. A killed bank resumes to the same numbers: tests/test_resume.py."""

import json
import logging
import subprocess
import sys

import pytest
import torch

from subtask_distill.data.embedded import build_splits
from subtask_distill.methods import get_method, list_methods
from subtask_distill.study import Run
from subtask_distill.training.factory import bank_problem, build_bank
from subtask_distill.training.jobs import split_tensors
from subtask_distill.training.teacher_source import TeacherPass

from .conftest import REPO, random_run_inputs
from .test_resume import without_timing

QUIET = logging.getLogger("test")


def assert_same_training(a, b):
    """Two outcomes of one run: the same history, choices and weights, bitwise."""
    assert without_timing(a.history) == without_timing(b.history)
    assert (a.best_epoch, a.val_acc, a.test_acc, a.diverged_at) == (b.best_epoch, b.val_acc, b.test_acc, b.diverged_at)
    assert a.best_state.keys() == b.best_state.keys()
    assert all(torch.equal(a.best_state[key], b.best_state[key]) for key in a.best_state)


@pytest.fixture(scope="module")
def bank_inputs(tiny_data, test_config):
    """In-memory inputs of the tiny study at rho 1: a random teacher, its logits, random subspaces."""
    tensors = split_tensors(build_splits(tiny_data[1], test_config["data"], 1.0, seed=0))
    return random_run_inputs(test_config, "embedded", tensors["train_x"][:], tensors["train_y"])


def train_alone(config, run, inputs):
    """The run trained by itself: a bank of one."""
    return build_bank(config, [run], inputs, torch.device("cpu")).train(QUIET, torch.device("cpu"))[0]


def tiny_config(test_config, teacher_outputs):
    config = json.loads(json.dumps(test_config))
    config["training"].update(epochs=2, teacher_outputs=teacher_outputs)
    for name in list_methods():
        config["methods"].setdefault(name, {})
    return config


@pytest.mark.parametrize("teacher_outputs", ["cached", "online"])
@pytest.mark.parametrize("method", list_methods())
def test_a_bank_member_ends_bitwise_as_the_same_run_alone(method, teacher_outputs, bank_inputs, test_config):
    config = tiny_config(test_config, teacher_outputs)
    lams = ["1", "100"] if get_method(method).uses_layers else ["0"]
    runs = [Run("embedded", method, "1", lam, 0) for lam in lams]
    cpu = torch.device("cpu")
    bank = build_bank(config, runs, bank_inputs, cpu)
    together = bank.train(QUIET, cpu)
    for run, outcome in zip(runs, together):
        assert_same_training(outcome, train_alone(config, run, bank_inputs))


@pytest.mark.parametrize("teacher_outputs", ["cached", "online"])
def test_a_bank_of_every_method_ends_each_run_bitwise_as_alone(teacher_outputs, bank_inputs, test_config):
    """A wide bank (training.bank: methods): every method, a layer subset beside all layers, two lambdas."""
    config = tiny_config(test_config, teacher_outputs)
    config["training"]["epochs"] = 1
    runs = [Run("embedded", "kd", "1", "0", 0), Run("embedded", "at", "1", "1", 0, "2")]
    runs += [Run("embedded", method, "1", lam, 0) for method in list_methods() if get_method(method).uses_layers
             for lam in ("1", "100")]
    cpu = torch.device("cpu")
    bank = build_bank(config, runs, bank_inputs, cpu)
    assert [m.name for m in bank.members[:3]] == ["kd lambda 0", "at-L2 lambda 1", "at lambda 1"]
    together = bank.train(QUIET, cpu)
    for run, outcome in zip(runs, together):
        assert_same_training(outcome, train_alone(config, run, bank_inputs))


def test_the_teacher_runs_once_per_batch_for_the_whole_bank(bank_inputs, test_config, monkeypatch):
    config = tiny_config(test_config, "online")
    config["training"]["epochs"] = 1
    calls = {"teacher": 0}
    original = TeacherPass.__call__

    def counting(self, x):
        if x is not self._batch:
            calls["teacher"] += 1
        return original(self, x)

    monkeypatch.setattr(TeacherPass, "__call__", counting)
    runs = [Run("embedded", "subdistill", "1", lam, 0) for lam in ("0.1", "1", "10")]
    runs += [Run("embedded", "kd", "1", "0", 0), Run("embedded", "at", "1", "1", 0, "13")]  # and a wide bank's others
    bank = build_bank(config, runs, bank_inputs, torch.device("cpu"))
    batches = sum(1 for _ in bank.members[0].data.train_batches(torch.Generator().manual_seed(0)))
    bank.train(QUIET, torch.device("cpu"))
    assert calls["teacher"] == batches


def test_a_diverging_student_stops_alone_and_the_others_are_unaffected(bank_inputs, test_config, caplog):
    config = tiny_config(test_config, "cached")
    runs = [Run("embedded", "at", "1", lam, 0) for lam in ("1", "1e39")]  # 1e39 overflows float32: an infinite loss
    cpu = torch.device("cpu")
    with caplog.at_level(logging.WARNING):
        healthy, diverged = build_bank(config, runs, bank_inputs, cpu).train(QUIET, cpu)
    assert "lambda 1e39: loss nan in epoch 1: this student stops here and keeps its best epoch 0" in caplog.text
    assert diverged.diverged_at == 1 and diverged.best_epoch == 0 and len(diverged.history) == 1
    assert all(torch.isfinite(w).all() for w in diverged.best_state.values() if w.is_floating_point())  # its initial weights
    assert healthy.diverged_at is None and len(healthy.history) == 2
    assert_same_training(healthy, train_alone(config, runs[0], bank_inputs))


@pytest.mark.parametrize(
    "runs, problem",
    [
        ([], "at least one run"),
        ([Run("p", "at", "1", "1", 0), Run("p", "at", "1", "1", 1)], "share one (pair, rho, seed)"),
        ([Run("p", "at", "1", "1", 0), Run("p", "at", "0.5", "1", 0)], "share one (pair, rho, seed)"),
        ([Run("p", "at", "1", "1", 0), Run("p", "at", "1", "1", 0)], "lists a run twice: at lambda 1"),
    ],
)
def test_a_bank_holds_distinct_runs_of_one_pair_rho_and_seed(runs, problem):
    assert problem in bank_problem(runs)
    assert bank_problem([Run("p", "at", "1", lam, 0) for lam in ("1", "10")]) is None
    assert bank_problem([Run("p", "at", "1", "1", 0), Run("p", "vid", "1", "10", 0), Run("p", "at", "1", "1", 0, "1")]) is None


def test_the_job_lists_its_runs_when_the_output_folders_do_not_match_them():
    # --method kd at --lam 1 10: KD's one run, then AT at each lambda: three runs, in that order.
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_student.py"), "--config", str(REPO / "config.yaml"),
         "--pair", "embedded", "--method", "kd", "at", "--rho", "1", "--lam", "1", "10", "--seed", "0",
         "--splits", "splits.npz", "--teacher-logits", "logits.npz", "--out-dir", "a", "b"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 2
    assert "--out-dir needs one folder per run: 3 runs (kd 0, at 1, at 10), 2 folders" in result.stderr
