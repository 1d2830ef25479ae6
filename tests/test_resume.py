"""Resume after interruption: a run or a bank killed with SIGKILL and started again ends exactly like an uninterrupted one."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import torch

from subtask_distill.data.embedded import build_splits
from subtask_distill.io import save_arrays, write_json
from subtask_distill.models import create_model
from subtask_distill.models.build import save_checkpoint
from subtask_distill.study import Run
from subtask_distill.training.jobs import RunFiles, run_student

QUIET = logging.getLogger("test")

# Trains students in a fresh process, each named "<method>-<lambda>": one run (outputs in <out>) or a bank
# (several, outputs in <out>/<method>-<lambda>). With KILL_AFTER_EPOCH=k it SIGKILLs itself in the middle of epoch k + 1, after the resume
# checkpoint of epoch k was written: the worst moment, with work in flight.
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
    folder = Path(sys.argv[1])
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
    out, members = sys.argv[2], sys.argv[3:]
    out_dirs = [folder / out] if len(members) == 1 else [folder / out / member for member in members]
    runs = [Run("embedded", method, "1", lam, 0) for method, lam in (member.split("-") for member in members)]
    run_bank(
        config, runs, files, out_dirs, torch.device("cpu"),
        logging.getLogger("run"), resume_path=folder / (out + "-resume.pt"),
    )
    """
)


@pytest.fixture
def run_folder(tmp_path, tiny_data, config):
    """Splits, teacher logits and a random teacher for runs of the tiny study (4 epochs)."""
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


def run_in_process(folder, out: str, kill_after: int = 0, members=("vid-10",)) -> subprocess.CompletedProcess:
    env = {"KILL_AFTER_EPOCH": str(kill_after), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, str(folder / "runner.py"), str(folder), out, *members]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def without_timing(history):
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


def test_sigkilled_run_resumes_to_identical_metrics_and_weights(run_folder):
    whole = run_in_process(run_folder, "whole")
    assert whole.returncode == 0, whole.stderr

    killed = run_in_process(run_folder, "resumed", kill_after=2)
    assert killed.returncode == -9, killed.stderr
    assert not (run_folder / "resumed" / "metrics.json").exists()
    assert torch.load(run_folder / "resumed-resume.pt", weights_only=False)["epoch"] == 2

    resumed = run_in_process(run_folder, "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 2 of 4" in resumed.stderr

    a = json.loads((run_folder / "whole" / "metrics.json").read_text())
    b = json.loads((run_folder / "resumed" / "metrics.json").read_text())
    assert without_timing(a["history"]) == without_timing(b["history"])
    assert (a["best_epoch"], a["val_acc"], a["test_acc"]) == (b["best_epoch"], b["val_acc"], b["test_acc"])
    weights_a = torch.load(run_folder / "whole" / "student.pt")["state_dict"]
    weights_b = torch.load(run_folder / "resumed" / "student.pt")["state_dict"]
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    assert not (run_folder / "resumed-resume.pt").exists(), "the resume checkpoint is removed once outputs exist"


@pytest.mark.parametrize(
    "members",
    [("vid-1", "vid-10"), ("kd-0", "at-1", "vid-10")],
    ids=["bank of lambdas", "bank of methods"],
)
def test_a_sigkilled_bank_resumes_to_the_uninterrupted_banks_numbers(run_folder, members):
    bank_folder = run_folder
    whole = run_in_process(bank_folder, "whole", members=members)
    assert whole.returncode == 0, whole.stderr
    killed = run_in_process(bank_folder, "resumed", kill_after=2, members=members)
    assert killed.returncode == -9, killed.stderr
    assert not any((bank_folder / "resumed").glob("*/metrics.json")), "nothing is written before the bank ends"
    resumed = run_in_process(bank_folder, "resumed", members=members)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 2 of 4" in resumed.stderr
    for member in members:
        a = json.loads((bank_folder / "whole" / member / "metrics.json").read_text())
        b = json.loads((bank_folder / "resumed" / member / "metrics.json").read_text())
        assert a["bank_size"] == len(members) and f"{a['method']}-{a['lambda']}" == member
        assert without_timing(a["history"]) == without_timing(b["history"])
        assert (a["best_epoch"], a["val_acc"], a["test_acc"]) == (b["best_epoch"], b["val_acc"], b["test_acc"])
        weights_a = torch.load(bank_folder / "whole" / member / "student.pt")["state_dict"]
        weights_b = torch.load(bank_folder / "resumed" / member / "student.pt")["state_dict"]
        assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    assert not (bank_folder / "resumed-resume.pt").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_settings"])
def test_damaged_resume_checkpoint_restarts_from_epoch_zero(run_folder, caplog, damage):
    config = json.loads((run_folder / "config.json").read_text())
    config["training"]["epochs"] = 2
    run = Run("embedded", "vid", "1", "10", 0)
    resume = run_folder / "resume.pt"

    def train(out):
        files = RunFiles(run_folder / "splits.npz", run_folder / "logits.npz", teacher=run_folder / "teacher.pt")
        return run_student(config, run, files, run_folder / out, torch.device("cpu"), QUIET, resume_path=resume)

    reference = train("reference")
    killed = run_in_process(run_folder, "partial", kill_after=1)  # leaves a valid epoch-1 checkpoint (4 epochs)
    assert killed.returncode == -9
    (run_folder / "partial-resume.pt").rename(resume)
    if damage == "truncate":
        resume.write_bytes(resume.read_bytes()[: resume.stat().st_size // 2])
    elif damage == "garbage":
        resume.write_bytes(b"not a checkpoint")
    # "other_settings": the checkpoint is intact but from a 4-epoch run of other settings.

    with caplog.at_level(logging.WARNING):
        outcome = train("restarted")
    assert "starting from epoch 0" in caplog.text
    assert [h["epoch"] for h in outcome["history"]] == [1, 2]
    assert without_timing(outcome["history"]) == without_timing(reference["history"])
