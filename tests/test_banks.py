"""Banks: the students of one (pair, method, rho, seed), one per lambda, trained on one stream of batches with
one teacher pass per batch, end exactly as each would alone; a diverging student stops alone; a killed bank
resumes to the same numbers."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import torch

from subtask_distill.data.embedded import build_splits
from subtask_distill.io import save_arrays, write_json
from subtask_distill.methods import get_method, list_methods
from subtask_distill.models import create_model
from subtask_distill.models.build import save_checkpoint
from subtask_distill.study import Run
from subtask_distill.training.factory import bank_problem, build_bank
from subtask_distill.training.jobs import split_tensors
from subtask_distill.training.teacher_source import TeacherPass

from .conftest import random_run_inputs

QUIET = logging.getLogger("test")


def without_timing(history):
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


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
        ([Run("p", "at", "1", "1", 0), Run("p", "at", "1", "1", 1)], "differ only in lambda"),
        ([Run("p", "at", "1", "1", 0), Run("p", "vid", "1", "10", 0)], "differ only in lambda"),
        ([Run("p", "at", "1", "1", 0), Run("p", "at", "1", "1", 0)], "lists a lambda twice"),
    ],
)
def test_a_bank_holds_the_lambdas_of_one_pair_method_rho_and_seed(runs, problem):
    assert problem in bank_problem(runs)
    assert bank_problem([Run("p", "at", "1", lam, 0) for lam in ("1", "10")]) is None


# Trains a bank of two VID students in a fresh process; with KILL_AFTER_EPOCH=k it SIGKILLs itself in the middle
# of epoch k + 1, after the bank's resume checkpoint of epoch k was written.
RUNNER = textwrap.dedent(
    """
    import json, logging, os, signal, sys
    from pathlib import Path
    import torch
    import subtask_distill.training.loop as train
    from subtask_distill.training.jobs import RunFiles, run_bank
    from subtask_distill.training.objective import DistillationObjective
    from subtask_distill.study import Run

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO)
    folder, out = Path(sys.argv[1]), sys.argv[2]
    kill_after = int(os.environ.get("KILL_AFTER_EPOCH", "0"))
    if kill_after:
        saved, forward = train.save_resume, DistillationObjective.forward
        state = {"armed": False, "batches": 0}

        def save_then_arm(path, fingerprint, epoch, payload):
            saved(path, fingerprint, epoch, payload)
            state["armed"] = epoch == kill_after

        def forward_then_kill(self, *args):
            if state["armed"]:
                state["batches"] += 1
                if state["batches"] == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            return forward(self, *args)

        train.save_resume, DistillationObjective.forward = save_then_arm, forward_then_kill
    config = json.loads((folder / "config.json").read_text())
    files = RunFiles(folder / "splits.npz", folder / "logits.npz", teacher=folder / "teacher.pt")
    runs = [Run("embedded", "vid", "1", lam, 0) for lam in ("1", "10")]
    run_bank(config, runs, files, [folder / out / run.lam for run in runs], torch.device("cpu"),
             logging.getLogger("bank"), resume_path=folder / (out + "-resume.pt"))
    """
)


@pytest.fixture
def bank_folder(tmp_path, tiny_data, config):
    _, base = tiny_data
    splits = build_splits(base, config["data"], 1.0, seed=0)
    save_arrays(tmp_path / "splits.npz", splits)
    logits = torch.randn(len(splits["train_y"]), 5, generator=torch.Generator().manual_seed(1)).numpy()
    save_arrays(tmp_path / "logits.npz", {"train_logits": logits})
    torch.manual_seed(0)
    spec = config["pairs"]["embedded"]["teacher"]
    save_checkpoint(tmp_path / "teacher.pt", create_model(spec["arch"], num_classes=spec["num_classes"]), spec)
    config["training"].update(epochs=4, teacher_outputs="cached")
    write_json(tmp_path / "config.json", config)
    (tmp_path / "runner.py").write_text(RUNNER)
    return tmp_path


def run_in_process(folder, out: str, kill_after: int = 0) -> subprocess.CompletedProcess:
    env = {"KILL_AFTER_EPOCH": str(kill_after), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(folder / "runner.py"), str(folder), out], env=env, capture_output=True, text=True)


def test_a_sigkilled_bank_resumes_to_the_uninterrupted_banks_numbers(bank_folder):
    whole = run_in_process(bank_folder, "whole")
    assert whole.returncode == 0, whole.stderr
    killed = run_in_process(bank_folder, "resumed", kill_after=2)
    assert killed.returncode == -9, killed.stderr
    assert not any((bank_folder / "resumed").glob("*/metrics.json")), "nothing is written before the bank ends"
    resumed = run_in_process(bank_folder, "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 2 of 4" in resumed.stderr
    for lam in ("1", "10"):
        a = json.loads((bank_folder / "whole" / lam / "metrics.json").read_text())
        b = json.loads((bank_folder / "resumed" / lam / "metrics.json").read_text())
        assert a["bank_size"] == 2 and a["lambda"] == lam
        assert without_timing(a["history"]) == without_timing(b["history"])
        assert (a["best_epoch"], a["val_acc"], a["test_acc"]) == (b["best_epoch"], b["val_acc"], b["test_acc"])
        weights_a = torch.load(bank_folder / "whole" / lam / "student.pt")["state_dict"]
        weights_b = torch.load(bank_folder / "resumed" / lam / "student.pt")["state_dict"]
        assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    assert not (bank_folder / "resumed-resume.pt").exists()
