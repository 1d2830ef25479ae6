#!/usr/bin/env python
"""Student banks against solo runs, per teacher-student pair and layer-wise method, and the two data paths.

For each pair and method, per-student training images per second of

  (a) bare: the student alone with a plain label loss;
  (b) solo: one run distilling from the teacher run online on every batch;
  (c) bank: the runs of the config's lambdas (the paper's 5) trained as one bank, one teacher pass per batch,

and, measured in the same turns, T (the teacher's forward per image, its layers tapped) and S (the
student's training step per image with its method's layer losses and the teacher's outputs given, the
cached mode). Arithmetic caps (c)/(b) at the ceiling n(T + S)/(T + nS); the table gives (c)/(b) and its
share of that ceiling. Every mode is wired by the training job's own factory (``build_bank``) and steps
with the loop's own ``bank_step`` and optimiser, on random images held in memory (no data loading) and
randomly initialised networks; each figure is the best of --repeats windows taken in turns.

With --data, the images per second of the two data paths on fabricated JPEGs: DataLoader workers that
decode and augment every image every epoch, against decoding once and augmenting on the device.

    python benchmarks/banks.py --config configs/paper.yaml --threads 2
    python benchmarks/banks.py --config configs/paper.yaml --pairs resnet18_to_resnet18s --methods at --data
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from subtask_distill.config import load_config
from subtask_distill.data.contamination import NO_ARTIFACT
from subtask_distill.data.device_augment import AugmentedBatches, decode_once
from subtask_distill.data.imagenet import SplitView, WadingBirds, make_loader
from subtask_distill.methods import get_method
from subtask_distill.models.build import build_network
from subtask_distill.models.taps import FeatureTaps
from subtask_distill.runtime import autocast_context, configure_threads, memory_format, select_device
from subtask_distill.study import Run, format_number
from subtask_distill.training.factory import build_bank
from subtask_distill.training.loop import bank_optimizer, bank_step, make_optimizer, start_progress, training_step
from subtask_distill.training.objective import TeacherOutputs
from subtask_distill.training.teacher_source import CachedTeacher

sys.path.insert(0, str(Path(__file__).parent))
from throughput import LabelLoss, peak_memory_mb, synchronize, synthetic_inputs  # noqa: E402


@dataclass
class Timing:
    """Seconds per image of the best window, and the peak memory of the mode."""

    seconds_per_image: float
    peak_memory_mb: float


class Mode:
    """One way to train on a batch, built once and timed in windows of --steps steps."""

    def __init__(self, step, batch: int, pool: torch.Tensor, device: torch.device):
        self.step, self.batch, self.pool, self.device = step, batch, pool, device
        self.generator = torch.Generator().manual_seed(0)
        self.best = float("inf")
        self.peak = 0.0

    def window(self, steps: int) -> None:
        synchronize(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            index = torch.randint(0, len(self.pool), (self.batch,), generator=self.generator)
            self.step(self.pool[index.to(self.device)], index)
        synchronize(self.device)
        self.best = min(self.best, (time.perf_counter() - start) / (steps * self.batch))
        self.peak = max(self.peak, peak_memory_mb(self.device))

    def timing(self) -> Timing:
        return Timing(self.best, self.peak)


def teacher_forward(inputs, pair: dict, training: dict, device: torch.device):
    """T: the frozen teacher on a batch with the pair's layers tapped, as the online teacher runs it."""
    taps = FeatureTaps(inputs.teacher, pair["teacher"]["layers"], named_in=inputs.teacher.model)
    autocast = autocast_context(training["mixed_precision"], device)

    @torch.no_grad()
    def step(x, index):
        with autocast():
            taps(x)

    return step


def bare_student(config: dict, pair_name: str, device: torch.device):
    """(a): the student alone, cross-entropy on labels, the loop's own step and optimiser."""
    pair, training = config["pairs"][pair_name], config["training"]
    classes = len(config["data"]["subtask_classes"])
    torch.manual_seed(0)
    student = build_network(pair["student"], num_classes=classes).to(device)
    student.to(memory_format=memory_format(training["channels_last"], device))
    optimizer = make_optimizer(list(student.parameters()), training, device)
    labels = CachedTeacher(TeacherOutputs(torch.zeros(1 << 16, dtype=torch.long)), device)
    autocast = autocast_context(training["mixed_precision"], device)
    return lambda x, index: training_step(student, LabelLoss(), optimizer, x, labels(x, index % len(labels.outputs)), autocast)


def bank_mode(config: dict, pair_name: str, method: str, lams: list[str], teacher_outputs: str, inputs, device: torch.device):
    """The runs of ``lams`` built as one bank by the job's factory; one step = one ``bank_step``."""
    config = copy.deepcopy(config)
    config["training"]["teacher_outputs"] = teacher_outputs
    runs = [Run(pair_name, method, "1", lam, 0) for lam in lams]
    bank = build_bank(config, runs, inputs, device)
    training = config["training"]
    for member in bank.members:
        member.student.to(memory_format=memory_format(training["channels_last"], device))
        member.objective.to(device)
    optimizer = bank_optimizer(bank.members, training, device)
    progress = [start_progress(member) for member in bank.members]
    autocast = autocast_context(training["mixed_precision"], device)
    layout = memory_format(training["channels_last"], device)
    return lambda x, index: bank_step(bank.members, progress, optimizer, x.contiguous(memory_format=layout), index, autocast)


@dataclass
class Row:
    pair: str
    method: str
    n: int
    teacher: Timing
    student: Timing
    bare: Timing
    solo: Timing
    bank: Timing

    @property
    def ceiling(self) -> float:
        t, s = self.teacher.seconds_per_image, self.student.seconds_per_image
        return self.n * (t + s) / (t + self.n * s)

    @property
    def bank_over_solo(self) -> float:
        """Per-student speed of the bank over the solo run's: (n / bank seconds) / (1 / solo seconds)."""
        return self.n * self.solo.seconds_per_image / self.bank.seconds_per_image


def measure_pair(config: dict, pair_name: str, methods: list[str], device: torch.device, args) -> list[Row]:
    """Every mode of ``pair_name`` for each method, in turns."""
    training = config["training"]
    size, batch = config["data"]["image_size"], training["batch_size"]
    lams = [format_number(lam) for lam in config["lambdas"]]
    torch.manual_seed(0)
    pool = torch.randn(batch * args.pool_batches, 3, size, size, device=device)
    inputs = synthetic_inputs(config, pair_name, pool, device)
    rows = []
    for method in methods:
        modes = {
            "teacher": teacher_forward(inputs, config["pairs"][pair_name], training, device),
            "student": bank_mode(config, pair_name, method, lams[:1], "cached", inputs, device),
            "bare": bare_student(config, pair_name, device),
            "solo": bank_mode(config, pair_name, method, lams[:1], "online", inputs, device),
            "bank": bank_mode(config, pair_name, method, lams, "online", inputs, device),
        }
        timed = {name: Mode(step, batch, pool, device) for name, step in modes.items()}
        for mode in timed.values():
            mode.window(args.warmup)
        for _ in range(args.repeats):
            for mode in timed.values():
                mode.window(args.steps)
        rows.append(Row(pair_name, method, len(lams), *(timed[name].timing() for name in modes)))
        print_row(rows[-1])
    return rows


def print_header() -> None:
    print(f"{'pair':<24} {'method':<11} {'T ms':>7} {'S ms':>7} {'(a) img/s':>9} {'(b) img/s':>9} {'(c) img/s':>9}"
          f" {'(c)/(b)':>7} {'ceiling':>7} {'share':>6}  peak MB (b/c)")


def print_row(row: Row) -> None:
    speed = lambda timing: 1.0 / timing.seconds_per_image  # noqa: E731
    print(f"{row.pair:<24} {row.method:<11} {row.teacher.seconds_per_image * 1e3:>7.1f} {row.student.seconds_per_image * 1e3:>7.1f}"
          f" {speed(row.bare):>9.2f} {speed(row.solo):>9.2f} {row.n * speed(row.bank):>9.2f} {row.bank_over_solo:>7.2f}"
          f" {row.ceiling:>7.2f} {row.bank_over_solo / row.ceiling:>6.0%}  {row.solo.peak_memory_mb:.0f}/{row.bank.peak_memory_mb:.0f}",
          flush=True)


def fabricate_jpegs(folder: Path, count: int, size: tuple[int, int] = (375, 500)) -> SplitView:
    """``count`` photograph-sized JPEGs (ImageNet's commonest size), as a clean training split."""
    rng = np.random.RandomState(0)
    paths = []
    for k in range(count):
        coarse = rng.randint(0, 256, size=(12, 16, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC), np.int16)
        image = np.clip(image + rng.randint(-20, 21, size=image.shape), 0, 255).astype(np.uint8)  # texture, as photographs have
        Image.fromarray(image).save(folder / f"{k}.JPEG", quality=90)
        paths.append(f"{k}.JPEG")
    n = len(paths)
    return SplitView(np.array(paths), np.zeros(n, int), np.full(n, NO_ARTIFACT), np.zeros(n, int), np.arange(n))


@dataclass
class DataPaths:
    workers_per_second: float  # DataLoader workers: decode + augment, every epoch
    decode_per_second: float  # decode once
    augment_per_second: float  # on-device augmentation, every epoch
    decoded_bytes_per_image: float


def measure_data_paths(count: int, batch: int, workers: int, image_size: int, max_side: int, device: torch.device) -> DataPaths:
    """One epoch of each data path over ``count`` fabricated JPEGs (the best of two)."""
    batch = min(batch, count)
    with tempfile.TemporaryDirectory() as folder:
        view = fabricate_jpegs(Path(folder), count)
        dataset = WadingBirds(Path(folder), view, None, "train", image_size)
        loader = make_loader(dataset, batch, True, workers, torch.Generator().manual_seed(0), device.type == "cuda")
        loader_seconds = []
        for _ in range(2):
            start = time.perf_counter()
            for x, *_ in loader:
                x.to(device, non_blocking=True)
            synchronize(device)
            loader_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        images = decode_once(Path(folder), view, max_side, workers)
        decode_seconds = time.perf_counter() - start
        batches = AugmentedBatches(images, view, None, batch, image_size, device)
        augment_seconds = []
        for epoch in range(2):
            start = time.perf_counter()
            for x, _ in batches(torch.Generator().manual_seed(epoch)):
                pass
            synchronize(device)
            augment_seconds.append(time.perf_counter() - start)
        seen = count - count % batch  # the loader drops the last partial batch
        return DataPaths(seen / min(loader_seconds), count / decode_seconds, count / min(augment_seconds), images.nbytes / count)


def print_data_paths(paths: DataPaths, epochs: int) -> None:
    once = 1.0 / (1.0 / paths.augment_per_second + 1.0 / (epochs * paths.decode_per_second))
    print(f"data path: workers {paths.workers_per_second:.0f} img/s; decode once {paths.decode_per_second:.0f} img/s,"
          f" then on-device augmentation {paths.augment_per_second:.0f} img/s ({once:.0f} img/s over {epochs} epochs,"
          f" {once / paths.workers_per_second:.1f}x the workers); {paths.decoded_bytes_per_image / 1e6:.2f} MB per decoded image",
          flush=True)


def layer_wise(config: dict) -> list[str]:
    return [m for m in config["methods"] if get_method(m).uses_layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/paper.yaml"))
    parser.add_argument("--pairs", nargs="+", help="default: every pair of the config")
    parser.add_argument("--methods", nargs="+", help="default: every layer-wise method of the config")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per window")
    parser.add_argument("--repeats", type=int, default=2, help="windows per mode, in turns; the fastest is reported")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--pool-batches", type=int, default=2, help="distinct batches of images the steps draw from")
    parser.add_argument("--data", action="store_true", help="also time the two data paths on fabricated JPEGs")
    parser.add_argument("--data-images", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the data paths")
    args = parser.parse_args()

    configure_threads(args.threads)
    config = load_config(args.config)
    config["training"]["batch_size"] = args.batch_size
    device = select_device(args.device)
    for pair in args.pairs or []:
        if pair not in config["pairs"]:
            parser.error(f"--pairs {pair!r} is not in {args.config} ({', '.join(config['pairs'])})")
    print(f"{args.config}: batch {args.batch_size}, {len(config['lambdas'])} lambdas per bank, device {device},"
          f" {args.threads} thread(s), mixed_precision {config['training']['mixed_precision']}")
    print_header()
    for pair in args.pairs or list(config["pairs"]):
        measure_pair(config, pair, args.methods or layer_wise(config), device, args)
    if args.data:
        data = config["data"]
        paths = measure_data_paths(args.data_images, 32, args.workers, data["image_size"], data["decoded_max_side"], device)
        print_data_paths(paths, config["training"]["epochs"])


if __name__ == "__main__":
    main()
