#!/usr/bin/env python
"""Training throughput of one (pair, method): bare student vs distillation with the teacher online or cached.

  (a) bare:   the student alone with a plain label loss, the practical limit;
  (b) online: distillation with the frozen teacher run on every batch;
  (c) cached: distillation with the teacher's outputs looked up (fixed inputs).

Every mode builds the run with the training job's own factory
(``build_distiller``) and runs the training loop's own step and optimiser with
the config's batch size, autocast and memory format, on random images of the
pair's size and randomly initialised networks (speed does not depend on the
weights). Prints images per second (the best of --repeats timed windows; the
three modes take turns, so a slow spell of a shared machine hits each alike), the
ratios c/a and c/b, peak memory, and the floating-point work per image of
(a) and (c) as counted by ``torch.utils.flop_counter`` (matrix products and
convolutions, forward and backward). Their ratio is the c/a that (c) would
reach if its extra work ran at the student's own rate: the ceiling that
arithmetic sets, which only extra work more efficient per FLOP can pass.

    python benchmarks/throughput.py --config config.yaml --pair embedded --method vid
    python benchmarks/throughput.py --config configs/paper.yaml --pair wrn101_to_mbnv4 --method subdistill --device cuda
"""

from __future__ import annotations

import argparse
import copy
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from subtask_distill.config import load_config
from subtask_distill.methods.subspace import LayerSubspace
from subtask_distill.models import SubtaskHead
from subtask_distill.models.build import build_network
from subtask_distill.models.taps import FeatureTaps
from subtask_distill.runtime import autocast_context, configure_threads, memory_format, select_device
from subtask_distill.study import Run
from subtask_distill.training.factory import RunInputs, build_distiller
from subtask_distill.training.loop import make_optimizer, training_step
from subtask_distill.training.objective import TeacherOutputs
from subtask_distill.training.teacher_source import CachedTeacher


class LabelLoss(nn.Module):
    """The bare student's objective: cross-entropy against labels (carried in ``teacher.logits``)."""

    def forward(self, student: nn.Module, x: torch.Tensor, teacher: TeacherOutputs) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(student(x), teacher.logits)}


def random_subspaces(teacher_shapes, student_shapes) -> list[LayerSubspace]:
    """Orthonormal bases of the right shapes: SubDistill's cost does not depend on which subspace."""
    return [
        LayerSubspace(torch.linalg.qr(torch.randn(c_t, k))[0], torch.zeros(c_t), torch.ones(k), torch.ones(k), float(k))
        for (c_t, *_), (k, *_) in zip(teacher_shapes, student_shapes)
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # process peak RSS (Linux: KiB)


@dataclass
class Measurement:
    images_per_second: float
    peak_memory_mb: float
    flops_per_image: float


def synthetic_inputs(config: dict, pair_name: str, pool: torch.Tensor, device: torch.device) -> RunInputs:
    """A run's inputs made here: a randomly initialised teacher, its logits on ``pool``, random subspaces."""
    pair, classes = config["pairs"][pair_name], config["data"]["subtask_classes"]
    teacher_net = build_network(pair["teacher"], num_classes=pair["teacher"].get("num_classes") or len(classes))
    teacher = SubtaskHead(teacher_net, classes).to(device).eval().requires_grad_(False)
    example = pool[:1]
    teacher_taps = FeatureTaps(teacher, pair["teacher"]["layers"], named_in=teacher.model)
    teacher_shapes = teacher_taps.shapes(example)
    teacher_taps.remove()
    student = build_network(pair["student"], num_classes=len(classes)).to(device)
    student_shapes = FeatureTaps(student, pair["student"]["layers"]).shapes(example)
    with torch.no_grad():
        logits = torch.cat([teacher(pool[i : i + 64]).float() for i in range(0, len(pool), 64)])
    labels = torch.zeros(len(pool), dtype=torch.long, device=device)
    return RunInputs(val_x=example, val_y=labels[:1], test_x=example, test_y=labels[:1], train_x=pool,
                     teacher_logits=logits, teacher=teacher,
                     subspaces=dict.fromkeys(("subdistill", "pca"), random_subspaces(teacher_shapes, student_shapes)))


def measure(mode: str, config: dict, pair_name: str, method_name: str, device: torch.device, args) -> Measurement:
    """Speed over one timed window, peak memory and floating-point work of ``mode`` (bare, online or cached)."""
    torch.manual_seed(0)
    pair, training = config["pairs"][pair_name], config["training"]
    size, batch, classes = config["data"]["image_size"], training["batch_size"], len(config["data"]["subtask_classes"])
    layout = memory_format(training["channels_last"], device)
    autocast = autocast_context(training["mixed_precision"], device)
    pool = torch.randn(batch * args.pool_batches, 3, size, size, device=device)

    if mode == "bare":
        student = build_network(pair["student"], num_classes=classes).to(device)
        objective: nn.Module = LabelLoss()
        source = CachedTeacher(TeacherOutputs(torch.randint(0, classes, (len(pool),), device=device)), device)
    else:
        config = copy.deepcopy(config)
        config["training"]["teacher_outputs"] = mode
        inputs = synthetic_inputs(config, pair_name, pool, device)
        # The run's own wiring, as the training job builds it.
        distiller = build_distiller(config, Run(pair_name, method_name, "1", "1", 0), inputs, device)
        student, objective, source = distiller.student, distiller.objective, distiller.data.teacher
    student.to(memory_format=layout)
    optimizer = make_optimizer(list(student.parameters()) + list(objective.parameters()), training, device)
    generator = torch.Generator().manual_seed(0)

    def steps(count: int) -> None:
        for _ in range(count):
            index = torch.randint(0, len(pool), (batch,), generator=generator)
            x = pool[index.to(device)].contiguous(memory_format=layout)
            training_step(student, objective, optimizer, x, source(x, index), autocast)

    steps(args.warmup)
    with FlopCounterMode(display=False) as counter:
        steps(1)
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    steps(args.steps)
    synchronize(device)
    return Measurement(args.steps * batch / (time.perf_counter() - start), peak_memory_mb(device), counter.get_total_flops() / batch)


def best_of(runs: list[Measurement]) -> Measurement:
    """The fastest window: other load on a shared machine only ever slows one down."""
    return Measurement(max(r.images_per_second for r in runs), max(r.peak_memory_mb for r in runs), runs[0].flops_per_image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("--pair", default="embedded")
    parser.add_argument("--method", nargs="+", default=["kd", "at", "vid", "vkd", "subdistill"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the embedded study runs students on 1)")
    parser.add_argument("--batch-size", type=int, help="default: training.batch_size of the config")
    parser.add_argument("--steps", type=int, default=60, help="timed optimiser steps per mode")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows per mode, in turns; the fastest is reported")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pool-batches", type=int, default=8, help="distinct batches of images the steps draw from")
    args = parser.parse_args()

    configure_threads(args.threads)
    config = load_config(args.config)
    if args.batch_size:
        config["training"]["batch_size"] = args.batch_size
    if args.pair not in config["pairs"]:
        parser.error(f"--pair {args.pair!r} is not in {args.config} ({', '.join(config['pairs'])})")
    device = select_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} thread(s)"
    print(f"pair {args.pair}, batch {config['training']['batch_size']}, device {name}, "
          f"mixed_precision {config['training']['mixed_precision']}, channels_last {config['training']['channels_last']}")
    measure("bare", config, args.pair, "kd", device, args)  # process warm-up (allocator, kernel choice): not reported
    print(f"{'method':<12} {'bare img/s':>10} {'online':>10} {'cached':>10} {'c/a':>6} {'c/b':>6}"
          f"  {'MFLOP/img a/c':>14} {'flop c/a':>8}  peak MB (bare/online/cached)")
    for method in args.method:
        # The bare student again beside each method, and the modes in turns: ratios compare windows close in time.
        runs: dict[str, list[Measurement]] = {mode: [] for mode in ("bare", "online", "cached")}
        for _ in range(args.repeats):
            for mode, windows in runs.items():
                windows.append(measure(mode, config, args.pair, "kd" if mode == "bare" else method, device, args))
        bare, online, cached = (best_of(windows) for windows in runs.values())
        flops = f"{bare.flops_per_image / 1e6:.1f}/{cached.flops_per_image / 1e6:.1f}"
        print(f"{method:<12} {bare.images_per_second:>10.0f} {online.images_per_second:>10.0f}"
              f" {cached.images_per_second:>10.0f} {cached.images_per_second / bare.images_per_second:>6.2f}"
              f" {cached.images_per_second / online.images_per_second:>6.2f}"
              f"  {flops:>14} {bare.flops_per_image / cached.flops_per_image:>8.2f}"
              f"  {bare.peak_memory_mb:.0f}/{online.peak_memory_mb:.0f}/{cached.peak_memory_mb:.0f}", flush=True)


if __name__ == "__main__":
    main()
