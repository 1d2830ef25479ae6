"""benchmarks/throughput.py runs on the embedded pair and reports what docs/performance.md quotes."""

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
