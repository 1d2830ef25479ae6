"""The benchmark scripts run and report what docs/performance.md quotes: throughput.py on the embedded pair,
banks.py and gpu_check.py (its --device cpu --quick mode) on a paper pair."""

import subprocess
import sys

from .conftest import REPO


def test_throughput_benchmark_reports_speed_ratios_and_floating_point_work():
    result = subprocess.run(
        [
            sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--config", str(REPO / "config.yaml"),
            "--method", "kd", "vid", "--steps", "2", "--repeats", "1", "--warmup", "1", "--pool-batches", "1",
        ],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["kd"], ["vid"])}
    assert set(rows) == {"kd", "vid"}
    for cells in rows.values():
        bare, online, cached, cached_over_bare, cached_over_online = map(float, cells[1:6])
        assert min(bare, online, cached) > 0
        # The ratios are of the unrounded speeds.
        assert abs(cached_over_bare - cached / bare) < 0.02 and abs(cached_over_online - cached / online) < 0.02
    bare_flops, cached_flops = map(float, rows["kd"][6].split("/"))
    assert bare_flops == cached_flops > 0 and float(rows["kd"][7]) == 1.0  # output-only KD adds no matrix work
    bare_flops, cached_flops = map(float, rows["vid"][6].split("/"))
    # VID's regressors (1x1 layers to the teacher's widths) cost more than the student itself on this pair.
    assert cached_flops > 2 * bare_flops and abs(float(rows["vid"][7]) - bare_flops / cached_flops) < 0.01


def run_script(name: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], capture_output=True, text=True,
                            timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bank_benchmark_reports_each_mode_the_ceiling_and_the_share_of_it_reached():
    out = run_script(
        "banks.py", "--config", str(REPO / "configs" / "paper.yaml"), "--pairs", "resnet18_to_resnet18s",
        "--methods", "at", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--pool-batches", "1",
        "--data", "--data-images", "8", "--workers", "0",
    )
    (cells,) = [line.split() for line in out.splitlines() if line.startswith("resnet18_to_resnet18s")]
    teacher, student, bare, solo, bank, bank_over_solo, ceiling, share = map(float, [*cells[2:9], cells[9].rstrip("%")])
    assert min(teacher, student, bare, solo, bank) > 0
    n = 5  # the paper's lambdas
    assert abs(ceiling - n * (teacher + student) / (teacher + n * student)) < 0.02
    assert abs(bank_over_solo - bank / solo) < 0.02 and abs(share - 100 * bank_over_solo / ceiling) < 1.5
    assert "data path, the artifact in every image: workers" in out and "then on-device augmentation" in out
    assert "img/s without the artifact" in out


def test_wide_bank_benchmark_reports_a_whole_cell_three_ways_against_its_ceilings():
    out = run_script(
        "banks.py", "--config", str(REPO / "configs" / "paper.yaml"), "--pairs", "resnet18_to_resnet18s",
        "--methods", "at", "--batch-size", "2", "--steps", "1", "--repeats", "1", "--pool-batches", "1", "--wide",
    )
    (cells,) = [line.split() for line in out.splitlines() if line.startswith("resnet18_to_resnet18s")]
    n, (teacher, students, alone, lambdas, wide, wide_over_alone, ceiling_alone, wide_over_lambdas, ceiling_lambdas) = (
        int(cells[1]), map(float, cells[2:11]))
    assert n == 1 + 5  # KD's one run and AT's five lambdas
    assert min(teacher, students, alone, lambdas, wide) > 0
    assert abs(wide_over_alone - wide / alone) < 0.02 and abs(wide_over_lambdas - wide / lambdas) < 0.02
    assert ceiling_alone > ceiling_lambdas > 1  # a bank per method already shares the teacher within each method
    assert abs(float(cells[11].rstrip("%")) - 100 * wide_over_lambdas / ceiling_lambdas) < 1.5


def test_gpu_check_runs_on_the_cpu_in_quick_mode():
    out = run_script("gpu_check.py", "--device", "cpu", "--quick", "--wide", "--pairs", "resnet18_to_resnet18s")
    for precision in ("bf16", "fp32"):
        assert f"grid of resnet18_to_resnet18s in {precision}:" in out
    assert "decoded training images of one job: 3.9 GB" in out  # 5,200 images at 0.75 MB
    assert "paper grid (bf16, 100 epochs, 5200 images):" in out and "with banks" in out
    assert "grid of resnet18_to_resnet18s: " in out and "GPU-hours one bank; peak" in out
    assert "grid of resnet18_to_resnet18s: " in out and "GPU-hours in one bank" not in out and "GPU-hours one bank" in out
