"""The paper-scale path through Snakemake, on fabricated ImageNet and MNIST files.

The paper config (configs/paper.yaml) with its dataset roots pointed at a tiny
generated ImageNet tree and MNIST IDX files in their real binary format, the
ResNet18 pair with a randomly initialised teacher saved as a local checkpoint,
and the grid cut to one rho, one seed, one lambda and one epoch at 64 px.
"""

import copy
import csv

import pytest
import torch
import yaml

from subtask_distill.models import create_model

from .conftest import REPO, run_snakemake, write_config
from .fabricated import fabricate_imagenet, fabricate_mnist

pytestmark = pytest.mark.slow
PAPER = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
PAIR = "resnet18_to_resnet18s"


def job_counts(stdout: str) -> dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_dry_run_of_the_paper_grid_without_data(workdir):
    result = run_snakemake(workdir, "-n", "--quiet", "rules", configfile=REPO / "configs" / "paper.yaml")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # Per pair 3 rho x 3 seeds x (1 + 4 methods x 5 lambdas) = 189 student runs; three pairs. The 5 lambdas
    # of a layer-wise method train as one bank: 3 x 3 x (1 + 4) = 45 jobs per pair.
    # Students are analysed only at lambda*, scheduled once Table I (a checkpoint) exists.
    assert "567 student runs, trained by 135 jobs" in result.stdout + result.stderr
    assert counts["train_bank"] == 3 * 3 * 3 * 4 and counts["train_student"] == 3 * 3 * 3 and "analyse_student" not in counts
    assert counts["fit_subspace"] == 3 * 3 * 3 and counts["teacher_logits"] == 27
    assert counts["build_manifest"] == 3 and counts["import_teacher"] == 3 and counts["build_report"] == 1


@pytest.mark.parametrize("scope, jobs, rule", [("methods", 3 * 3 * 3, "train_wide_bank"), ("none", 567, "train_student")])
def test_every_bank_scope_trains_the_567_paper_runs(workdir, scope, jobs, rule):
    # methods: the 21 runs of a (pair, rho, seed) in one job; none: a job per run.
    config = dict(PAPER, training=dict(PAPER["training"], bank=scope))
    configfile = write_config(workdir / "paper.yaml", config)
    result = run_snakemake(workdir, "-n", "--quiet", "rules", configfile=configfile)
    assert result.returncode == 0, result.stderr
    assert f"567 student runs, trained by {jobs} jobs" in result.stdout + result.stderr
    counts = job_counts(result.stdout)
    assert counts[rule] == jobs and {"train_bank", "train_student", "train_wide_bank"} & set(counts) == {rule}


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    """A paper config whose roots hold fabricated data, cut to a grid that runs in a minute or two on a CPU."""
    folder = tmp_path_factory.mktemp("paper")
    config = copy.deepcopy(PAPER)
    fabricate_imagenet(folder / "imagenet", config["data"]["wnids"], train_per_class=5, val_per_class=2)
    fabricate_mnist(folder / "mnist", per_class=3)
    torch.manual_seed(0)
    torch.save(create_model("resnet18", num_classes=1000).state_dict(), folder / "resnet18.pt")

    config["data"].update(imagenet_root=str(folder / "imagenet"), mnist_root=str(folder / "mnist"), image_size=64, workers=0)
    pair = config["pairs"][PAIR]
    pair["teacher"].pop("weights")
    pair["teacher"]["checkpoint"] = str(folder / "resnet18.pt")
    pair["resources"] = {"gpu": 0, "mem_mb": 2000, "runtime": 10}
    config["pairs"] = {PAIR: pair}
    config.update(rhos=[1], seeds=[0], lambdas=[1])
    config["training"].update(epochs=1, batch_size=4, bank="methods")  # the whole grid in one job
    config["analysis"]["max_images"] = 4
    config["runtime"].update(teacher_threads=1, student_threads=1)
    return folder, config


def test_fabricated_paper_study_runs_end_to_end(fabricated):
    folder, config = fabricated
    configfile = write_config(folder / "paper.yaml", config)
    result = run_snakemake(folder, "--cores", "2", "all", configfile=configfile, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = folder / "results" / "paper"
    with open(results / "table1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["method"] for row in rows} == {"kd", "at", "vid", "vkd", "subdistill"}
    assert all(row["pair"] == PAIR and row["rho"] == "1" for row in rows)
    assert (results / "report.html").stat().st_size > 10_000
    train_log = (results / "logs" / "train_wide_bank" / PAIR / "rho1_seed0.log").read_text()
    assert "kd lambda 0; at lambda 1; vid lambda 1; vkd lambda 1; subdistill lambda 1" in train_log
    assert "(augmented), teacher outputs online" in train_log
    assert "decoded 21 training images once" in train_log
    assert "subdistill lambda 1: epoch 1/1" in train_log


def run_broken(fabricated, tmp_path, change, target="all"):
    _, config = fabricated
    config = copy.deepcopy(config)
    change(config)
    configfile = write_config(tmp_path / "broken.yaml", config)
    return run_snakemake(tmp_path, "--cores", "1", target, configfile=configfile, timeout=300)


def test_unset_or_missing_imagenet_root_is_reported_before_any_job(fabricated, tmp_path):
    unset = run_broken(fabricated, tmp_path, lambda c: c["data"].update(imagenet_root=None))
    assert unset.returncode != 0 and "data.imagenet_root: not set" in unset.stderr
    missing = run_broken(fabricated, tmp_path, lambda c: c["data"].update(imagenet_root=str(tmp_path / "nowhere")))
    assert missing.returncode != 0 and f"data.imagenet_root: {tmp_path / 'nowhere'} is not a folder" in missing.stderr
    assert not (tmp_path / "results").exists(), "no job may start"


def test_missing_class_folder_is_named(fabricated, tmp_path):
    folder, config = fabricated
    tree = tmp_path / "imagenet"
    fabricate_imagenet(tree, config["data"]["wnids"], train_per_class=2, val_per_class=1)
    wnid = config["data"]["wnids"][3]
    for image in (tree / "val" / wnid).iterdir():
        image.unlink()
    (tree / "val" / wnid).rmdir()
    result = run_broken(fabricated, tmp_path, lambda c: c["data"].update(imagenet_root=str(tree)))
    assert result.returncode != 0 and f"{tree / 'val' / wnid} (limpkin)" in result.stderr


def test_unreadable_jpeg_stops_the_manifest_step_naming_the_file(fabricated, tmp_path):
    _, config = fabricated
    tree = tmp_path / "imagenet"
    fabricate_imagenet(tree, config["data"]["wnids"], train_per_class=2, val_per_class=1)
    broken = sorted((tree / "train" / config["data"]["wnids"][0]).iterdir())[0]
    broken.write_bytes(b"not a jpeg")
    result = run_broken(fabricated, tmp_path, lambda c: c["data"].update(imagenet_root=str(tree)), target="results/paper/data/manifest_rho1.npz")
    assert result.returncode != 0
    log = (tmp_path / "results" / "paper" / "logs" / "build_manifest" / "rho1.log").read_text()
    assert str(broken) in log


def test_missing_teacher_weights_stop_the_import_naming_the_file(fabricated, tmp_path):
    missing = tmp_path / "no_such_teacher.pt"
    result = run_broken(
        fabricated, tmp_path, lambda c: c["pairs"][PAIR]["teacher"].update(checkpoint=str(missing)),
        target=f"results/paper/teachers/{PAIR}/pretrained.pt",
    )
    assert result.returncode != 0
    log = (tmp_path / "results" / "paper" / "logs" / "import_teacher" / f"{PAIR}.log").read_text()
    assert str(missing) in log and f"pairs.{PAIR}.teacher.checkpoint" in log
