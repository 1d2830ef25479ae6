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

With --wide, per pair, a whole (pair, rho, seed) cell of the grid (output-only KD and every layer-wise
method at every lambda) trained three ways: every run alone, a bank per method (``training.bank:
lambdas``, KD alone), and one wide bank of them all (``training.bank: methods``); with the ceiling that
the measured T and each method's S set for the wide bank over each of the other two.

With --data, the images per second of the two data paths on fabricated JPEGs carrying the config's
artifact in every image: DataLoader workers that decode and augment every image every epoch, against
decoding once and augmenting on the device (also timed without the artifact, to show what drawing it costs).

    python benchmarks/banks.py --config configs/paper.yaml --threads 2
    python benchmarks/banks.py --config configs/paper.yaml --threads 2 --wide
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

from subtask_distill.artifacts import Artifact, build_artifact, get_artifact
from subtask_distill.config import load_config
from subtask_distill.data.contamination import NO_ARTIFACT
from subtask_distill.data.device_augment import AugmentedBatches, decode_once
from subtask_distill.data.embedded import load_digit_halves
from subtask_distill.data.imagenet import SplitView, WadingBirds, make_loader
from subtask_distill.methods import get_method
from subtask_distill.models.build import build_network
from subtask_distill.models.taps import FeatureTaps
from subtask_distill.runtime import autocast_context, configure_threads, memory_format, select_device
from subtask_distill.study import Run, bank_runs, format_number
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


def runs_of(pair_name: str, method: str, lams: list[str]) -> list[Run]:
    """The runs of ``method`` at ``lams`` (an output-only method: its one run), at rho 1 and seed 0."""
    return bank_runs(pair_name, [method], "1", lams, 0, {method: get_method(method).uses_layers})


def bank_mode(config: dict, runs: list[Run], teacher_outputs: str, inputs, device: torch.device):
    """``runs`` built as one bank by the job's factory; one step = one ``bank_step``."""
    config = copy.deepcopy(config)
    config["training"]["teacher_outputs"] = teacher_outputs
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


def pair_pool(config: dict, pair_name: str, device: torch.device, args):
    """Random images in memory, and a run's inputs made from them (a random teacher, its logits, subspaces)."""
    size, batch = config["data"]["image_size"], config["training"]["batch_size"]
    torch.manual_seed(0)
    pool = torch.randn(batch * args.pool_batches, 3, size, size, device=device)
    return pool, synthetic_inputs(config, pair_name, pool, device)


def time_in_turns(modes: dict, batch: int, pool: torch.Tensor, device: torch.device, args) -> dict[str, Timing]:
    """Each mode's best window: a warm-up window each, then --repeats windows of every mode in turn."""
    timed = {name: Mode(step, batch, pool, device) for name, step in modes.items()}
    for mode in timed.values():
        mode.window(args.warmup)
    for _ in range(args.repeats):
        for mode in timed.values():
            mode.window(args.steps)
    return {name: mode.timing() for name, mode in timed.items()}


def measure_pair(config: dict, pair_name: str, methods: list[str], device: torch.device, args) -> list[Row]:
    """Every mode of ``pair_name`` for each method, in turns."""
    training = config["training"]
    lams = [format_number(lam) for lam in config["lambdas"]]
    pool, inputs = pair_pool(config, pair_name, device, args)
    rows = []
    for method in methods:
        modes = {
            "teacher": teacher_forward(inputs, config["pairs"][pair_name], training, device),
            "student": bank_mode(config, runs_of(pair_name, method, lams[:1]), "cached", inputs, device),
            "bare": bare_student(config, pair_name, device),
            "solo": bank_mode(config, runs_of(pair_name, method, lams[:1]), "online", inputs, device),
            "bank": bank_mode(config, runs_of(pair_name, method, lams), "online", inputs, device),
        }
        timings = time_in_turns(modes, training["batch_size"], pool, device, args)
        rows.append(Row(pair_name, method, len(lams), *timings.values()))
        print_row(rows[-1])
    return rows


@dataclass
class WideRow:
    """A (pair, rho, seed) cell of ``n`` runs, seconds per image for all of them: alone, banked per method, in one bank."""

    pair: str
    n: int
    teacher: float  # T
    students: float  # the sum of every run's S
    ceiling_over_solo: float
    ceiling_over_lambdas: float
    solo: float
    lambdas: float
    wide: float
    wide_peak_mb: float


def measure_wide(config: dict, pair_name: str, methods: list[str], device: torch.device, args) -> WideRow:
    """A whole cell of ``pair_name`` (KD and ``methods`` at the config's lambdas) trained three ways, in turns.

    Alone, a run costs T + S_m per image; a bank of its method's n_m lambdas T + n_m S_m; the wide bank
    T + sum of every run's S. The ceilings are those sums' ratios, from T and each S measured here.
    """
    training = config["training"]
    lams = [format_number(lam) for lam in config["lambdas"]]
    cell = {method: runs_of(pair_name, method, lams) for method in ("kd", *methods)}
    pool, inputs = pair_pool(config, pair_name, device, args)
    modes = {"teacher": teacher_forward(inputs, config["pairs"][pair_name], training, device)}
    for method, runs in cell.items():
        modes[f"student {method}"] = bank_mode(config, runs[:1], "cached", inputs, device)
        modes[f"alone {method}"] = bank_mode(config, runs[:1], "online", inputs, device)
        if len(runs) > 1:
            modes[f"bank {method}"] = bank_mode(config, runs, "online", inputs, device)
    modes["wide"] = bank_mode(config, [run for runs in cell.values() for run in runs], "online", inputs, device)
    timings = time_in_turns(modes, training["batch_size"], pool, device, args)
    seconds = {name: timing.seconds_per_image for name, timing in timings.items()}
    t, n = seconds["teacher"], {method: len(runs) for method, runs in cell.items()}
    s = {method: seconds[f"student {method}"] for method in cell}
    students = sum(n[m] * s[m] for m in cell)
    return WideRow(
        pair_name, sum(n.values()), t, students,
        ceiling_over_solo=sum(n[m] * (t + s[m]) for m in cell) / (t + students),
        ceiling_over_lambdas=sum(t + n[m] * s[m] for m in cell) / (t + students),
        solo=sum(n[m] * seconds[f"alone {m}"] for m in cell),
        lambdas=sum(seconds.get(f"bank {m}", seconds[f"alone {m}"]) for m in cell),
        wide=seconds["wide"],
        wide_peak_mb=timings["wide"].peak_memory_mb,
    )


def print_wide(row: WideRow) -> None:
    print(f"{row.pair:<24} {row.n:>3} {row.teacher * 1e3:>7.1f} {row.students * 1e3:>8.1f}"
          f" {row.n / row.solo:>9.2f} {row.n / row.lambdas:>9.2f} {row.n / row.wide:>9.2f}"
          f" {row.solo / row.wide:>6.2f} {row.ceiling_over_solo:>7.2f} {row.lambdas / row.wide:>6.2f} {row.ceiling_over_lambdas:>7.2f}"
          f" {row.lambdas / row.wide / row.ceiling_over_lambdas:>6.0%}", flush=True)


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
    """``count`` photograph-sized JPEGs (ImageNet's commonest size), as a training split that carries the
    artifact in every image (rho 1, the costliest), instance k % 10 of class k % 5."""
    rng = np.random.RandomState(0)
    paths = []
    for k in range(count):
        coarse = rng.randint(0, 256, size=(12, 16, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.BICUBIC), np.int16)
        image = np.clip(image + rng.randint(-20, 21, size=image.shape), 0, 255).astype(np.uint8)  # texture, as photographs have
        Image.fromarray(image).save(folder / f"{k}.JPEG", quality=90)
        paths.append(f"{k}.JPEG")
    n = len(paths)
    return SplitView(np.array(paths), np.arange(n) % 5, np.arange(n) % 5, np.arange(n) % 10, np.arange(n))


def bundled_artifact(data_cfg: dict) -> Artifact:
    """The config's artifact; a digit draws from scikit-learn's bundled digits as MNIST-like bytes."""
    pools = None
    if get_artifact(data_cfg["artifact"]["kind"]).uses_digits:
        halves = load_digit_halves(len(data_cfg["subtask_classes"]), patch=8)
        pools = {name: ((halves[f"digits_{name}"] * 255).round().astype(np.uint8), halves[f"digits_{name}_y"])
                 for name in ("train", "test")}
    return build_artifact(data_cfg, pools)


@dataclass
class DataPaths:
    workers_per_second: float  # DataLoader workers: decode + augment + artifact, every epoch
    decode_per_second: float  # decode once
    augment_per_second: float  # on-device augmentation + artifact, every epoch
    clean_augment_per_second: float  # on-device augmentation of images without the artifact
    decoded_bytes_per_image: float


def epoch_seconds(batches: AugmentedBatches, device: torch.device) -> float:
    """The fastest of two epochs of on-device augmentation."""
    seconds = []
    for epoch in range(2):
        start = time.perf_counter()
        for _ in batches(torch.Generator().manual_seed(epoch)):
            pass
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def measure_data_paths(count: int, batch: int, workers: int, data_cfg: dict, device: torch.device) -> DataPaths:
    """One epoch of each data path over ``count`` fabricated JPEGs carrying the config's artifact (the best of two)."""
    batch, image_size = min(batch, count), data_cfg["image_size"]
    artifact = bundled_artifact(data_cfg)
    with tempfile.TemporaryDirectory() as folder:
        view = fabricate_jpegs(Path(folder), count)
        dataset = WadingBirds(Path(folder), view, artifact, "train", image_size)
        loader = make_loader(dataset, batch, True, workers, torch.Generator().manual_seed(0), device.type == "cuda")
        loader_seconds = []
        for _ in range(2):
            start = time.perf_counter()
            for x, *_ in loader:
                x.to(device, non_blocking=True)
            synchronize(device)
            loader_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        images = decode_once(Path(folder), view, data_cfg["decoded_max_side"], workers)
        decode_seconds = time.perf_counter() - start
        marked = AugmentedBatches(images, view, artifact, batch, image_size, device)
        clean_view = SplitView(view.paths, view.labels, np.full(count, NO_ARTIFACT), view.instance, view.image_id)
        clean = AugmentedBatches(marked.images, clean_view, artifact, batch, image_size, device)
        seen = count - count % batch  # the loader drops the last partial batch
        return DataPaths(seen / min(loader_seconds), count / decode_seconds, count / epoch_seconds(marked, device),
                         count / epoch_seconds(clean, device), images.nbytes / count)


def print_data_paths(paths: DataPaths, epochs: int) -> None:
    once = 1.0 / (1.0 / paths.augment_per_second + 1.0 / (epochs * paths.decode_per_second))
    print(f"data path, the artifact in every image: workers {paths.workers_per_second:.0f} img/s; decode once"
          f" {paths.decode_per_second:.0f} img/s, then on-device augmentation {paths.augment_per_second:.0f} img/s"
          f" ({paths.clean_augment_per_second:.0f} img/s without the artifact; {once:.0f} img/s over {epochs} epochs,"
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
    parser.add_argument("--wide", action="store_true",
                        help="instead of the per-method table: a whole (pair, rho, seed) cell alone, per method and in one bank")
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
    pairs, methods = args.pairs or list(config["pairs"]), args.methods or layer_wise(config)
    if args.wide:
        print("per-student training images per second of a whole (pair, rho, seed) cell: every run alone, a bank per"
              " method (KD alone), one wide bank; T and the sum of the runs' S in ms per image")
        print(f"{'pair':<24} {'n':>3} {'T ms':>7} {'sum S ms':>8} {'alone':>9} {'lambdas':>9} {'wide':>9}"
              f" {'w/alone':>6} {'ceiling':>7} {'w/lamb':>6} {'ceiling':>7} {'share':>6}")
        for pair in pairs:
            print_wide(measure_wide(config, pair, methods, device, args))
    else:
        print_header()
        for pair in pairs:
            measure_pair(config, pair, methods, device, args)
    if args.data:
        paths = measure_data_paths(args.data_images, 32, args.workers, config["data"], device)
        print_data_paths(paths, config["training"]["epochs"])


if __name__ == "__main__":
    main()
