"""The SLURM path end to end: a narrowed tiny study through Snakemake's SLURM executor.

Needs a real SLURM cluster: the one-node test cluster of .ci/slurm/start-cluster
(partition ``ci``, one fake GPU, no slurmdbd) and the ``slurm`` extra
(snakemake-executor-plugin-slurm). Skipped unless SUBTASK_DISTILL_SLURM=1, so that
``make test`` stays fast and needs no SLURM:

    .ci/slurm/start-cluster
    SUBTASK_DISTILL_SLURM=1 .venv/bin/pytest -m slurm
    .ci/slurm/stop-cluster
"""

import csv
import importlib.util
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, run_snakemake, write_config

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("SUBTASK_DISTILL_SLURM") != "1",
        reason="needs a SLURM cluster: run .ci/slurm/start-cluster, then SUBTASK_DISTILL_SLURM=1 pytest -m slurm",
    ),
]

PROFILE = REPO / "profiles" / "slurm-ci"
METHODS = ["kd", "subdistill"]
TIMEOUT_S = 900

SUBMITTED = re.compile(r"^Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$", re.MULTILINE)
# A job as Snakemake prints it: "rule NAME:" or "checkpoint NAME:" (prefixed "local" when it runs locally),
# then indented fields, "output: ..." among them.
JOB_BLOCK = re.compile(r"^[ \t]*(local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+\w+: .*\n)+)", re.MULTILINE)


def slurm(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def jobs_in(text: str) -> list[tuple[bool, str, str]]:
    """(local, rule, outputs) of every job printed in a Snakemake log; outputs identify a job across logs."""
    jobs = []
    for match in JOB_BLOCK.finditer(text):
        fields = dict(re.findall(r"^[ \t]+(\w+): (.*)$", match.group(3), flags=re.MULTILINE))
        jobs.append((bool(match.group(1)), match.group(2), fields.get("output", "")))
    return jobs


def slurm_jobs() -> dict[str, dict[str, str]]:
    """Every job the cluster still knows (MinJobAge keeps finished ones), as scontrol's key=value fields."""
    jobs = {}
    for line in slurm("scontrol", "--oneliner", "show", "job").splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


@pytest.fixture(scope="module")
def cluster():
    """The test cluster's partition `ci`. SUBTASK_DISTILL_SLURM=1 asks for this test, so what is missing fails it."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.fail('SUBTASK_DISTILL_SLURM=1 but no SLURM executor plugin: pip install -e ".[dev,slurm]"')
    if shutil.which("sinfo") is None:
        pytest.fail("SUBTASK_DISTILL_SLURM=1 but no SLURM client (sinfo) on PATH: run .ci/slurm/start-cluster")
    info = subprocess.run(["sinfo", "-h", "-p", "ci", "-o", "%t %c %m %G"], capture_output=True, text=True, check=False)
    if info.returncode != 0 or not info.stdout.strip():
        pytest.fail(f"no SLURM partition `ci` answers ({info.stderr.strip()}): run .ci/slurm/start-cluster")
    state, cpus, memory, gres = info.stdout.split()[:4]
    assert state in {"idle", "mix", "alloc"}, f"test node is {state}: see `sinfo -R` and <state>/log"
    # profiles/slurm-ci caps one submission at 2 CPUs, 4000 MB and 1 GPU.
    assert int(cpus) >= 2 and int(memory.rstrip("+")) >= 4000 and "gpu:1" in gres, info.stdout
    return info.stdout


@pytest.fixture(scope="module")
def slurm_study(cluster, tmp_path_factory):
    """The tiny study narrowed to 2 methods and 1 lambda (37 jobs instead of 76: each SLURM job
    costs some 10-15 s of Snakemake start-up and polling on 2 cores), run through SLURM.

    Every stage still runs: data, teacher (on the fake GPU), teacher logits, subspaces, student
    training, teacher and student analyses, Table I, figures and the report. Returns the work
    folder, Snakemake's completed process and the run's wall time.
    """
    from subtask_distill.config import validate_config

    workdir = tmp_path_factory.mktemp("slurm")
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")  # the Snakefile's configfile
    config = validate_config(yaml.safe_load((REPO / "configs" / "test.yaml").read_text()))
    config["study"] = "slurm"
    config["methods"] = {name: config["methods"][name] for name in METHODS}
    config["lambdas"] = [1]
    configfile = write_config(workdir / "slurm.yaml", config)
    started = time.monotonic()
    try:
        result = run_snakemake(workdir, "--profile", str(PROFILE), "all", configfile=configfile, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        queue = subprocess.run(["squeue", "--states=all"], capture_output=True, text=True, check=False).stdout
        pytest.fail(f"Snakemake under SLURM took over {TIMEOUT_S}s; squeue:\n{queue}\n{str(error.stderr)[-3000:]}")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    print(f"\nSLURM run of the narrowed tiny study: {elapsed:.0f}s")
    return workdir, result, elapsed


def test_the_study_completes_under_slurm(slurm_study):
    workdir, _, _ = slurm_study
    results = workdir / "results" / "slurm"
    with open(results / "table1.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["pair"], float(r["rho"]), r["method"]) for r in rows] == [
        ("embedded", rho, method) for rho in (0.0, 1.0) for method in METHODS
    ]
    assert all(int(r["n_seeds"]) == 2 and 0 <= float(r["test_acc_mean"]) <= 100 for r in rows)
    html = (results / "report.html").read_text()
    assert '<table class="table1">' in html and "SubDistill" in html
    assert len(list((results / "runs").glob("*/*/rho*/lam*/seed*/analysis.npz"))) == 2 * 2 * 2
    assert len(list((results / "analysis").glob("*/teacher.npz"))) == 1  # one per pair, on the largest rho's images


def test_every_job_ran_as_a_completed_slurm_job(slurm_study):
    workdir, result, _ = slurm_study
    log = result.stdout + result.stderr
    submissions = {slurm_id: (job, path) for job, slurm_id, path in SUBMITTED.findall(log)}
    assert submissions, "no SLURM submission in Snakemake's log"

    # Each submission finished COMPLETED with exit code 0, by the cluster's own account.
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    known = slurm_jobs()
    for slurm_id in submissions:
        assert slurm_id in known, f"SLURM job {slurm_id} unknown to scontrol (MinJobAge too small?)"
        fields = known[slurm_id]
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), fields
        assert fields["JobName"] == run_id and fields["Partition"] == "ci"
    # ... and no other job of this run was submitted behind Snakemake's back.
    assert {i for i, f in known.items() if f.get("JobName") == run_id} == set(submissions)

    # Every Snakemake job but the local ones (rule all, localrules) ran in exactly one of those SLURM jobs: the
    # jobs named in the SLURM jobs' logs (.snakemake/slurm_logs/..., kept by the profile) are
    # exactly the non-local jobs of the run, one per SLURM job.
    workflow_jobs = jobs_in(log)
    local = {(rule, out) for is_local, rule, out in workflow_jobs if is_local}
    remote = {(rule, out) for _, rule, out in workflow_jobs} - local
    assert "all" in {rule for rule, _ in local}
    # Table I is a checkpoint: the DAG grows once it exists (the analyses at lambda*), so the run's
    # last "N of M steps" line, not the first job table, counts every job.
    total = int(re.findall(r"^\d+ of (\d+) steps \(100%\) done$", log, flags=re.MULTILINE)[-1])
    assert len(remote) == total - len(local)

    ran_in_slurm = {}
    for slurm_id, (_, path) in submissions.items():
        assert path.startswith(str(workdir / ".snakemake" / "slurm_logs")), path
        for _, rule, out in jobs_in(Path(path).read_text()):
            ran_in_slurm.setdefault((rule, out), set()).add(slurm_id)
    assert set(ran_in_slurm) == remote
    assert all(len(ids) == 1 for ids in ran_in_slurm.values()), "a job ran in more than one SLURM job"
    assert len(submissions) == len(remote)


def test_the_gpu_request_reached_slurm(slurm_study):
    _, result, _ = slurm_study
    log = result.stdout + result.stderr
    (teacher_job,) = [i for _, i, path in SUBMITTED.findall(log) if "/rule_train_teacher/" in path]
    fields = slurm_jobs()[teacher_job]
    assert "gpu" in fields.get("TresPerJob", "") + fields.get("TresPerNode", ""), fields
