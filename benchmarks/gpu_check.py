#!/usr/bin/env python
"""The GPU check: what the paper grid will cost on this GPU, in one command, with nothing to download.

For each paper pair, in bf16 and fp32: per-student training images per second of the bare student (a), a
solo run with the online teacher (b) and a bank of the paper's 5 lambdas (c), each with its peak GPU
memory; the images per second of the two data paths (DataLoader workers decoding JPEGs every epoch, and
decoding once with on-device augmentation); and from these the GPU-hours of the whole paper grid with and
without banks. With --wide, per pair in bf16, a whole (pair, rho, seed) cell of every method trained alone,
in a bank per method and in one wide bank, and the grid's GPU-hours each way from those (no extrapolation
from one method). Random weights, random images and fabricated JPEGs: the speeds do not depend on them.
It takes a few minutes on one GPU; record what it prints in docs/performance.md.

    python benchmarks/gpu_check.py                      # on the GPU
    python benchmarks/gpu_check.py --wide               # and the wide banks (a few minutes more)
    python benchmarks/gpu_check.py --device cpu --quick # the same code path in a minute, for the tests
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from subtask_distill.config import load_config
from subtask_distill.runtime import configure_threads, select_device

sys.path.insert(0, str(Path(__file__).parent))
from banks import Row, layer_wise, measure_data_paths, measure_pair, measure_wide, print_data_paths, print_header  # noqa: E402

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"


def grid_hours(config: dict, row: Row, train_images: int) -> tuple[float, float]:
    """GPU-hours of the pair's trainings in the grid from one method's measured speeds, without and with banks.

    Every run passes over ``train_images`` images per epoch; output-only KD, one run per (rho, seed), costs
    about (b) (its teacher pass dominates), each layer-wise method's 5 lambdas 5 runs at (b) or one bank at (c).
    """
    cells = len(config["rhos"]) * len(config["seeds"])
    layer_wise = sum(1 for m in config["methods"] if m != "kd")
    images = train_images * config["training"]["epochs"]
    solo = images * row.solo.seconds_per_image
    bank = images * row.bank.seconds_per_image  # one pass over the images trains all n students
    return cells * (1 + layer_wise * row.n) * solo / 3600, cells * (solo + layer_wise * bank) / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny windows and data (checks the script, not the GPU)")
    parser.add_argument("--pairs", nargs="+", help="default: the paper's three")
    parser.add_argument("--method", default="subdistill", help="the layer-wise method timed for (b) and (c)")
    parser.add_argument("--batch-size", type=int, default=32, help="the paper's")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers (the paper config's)")
    parser.add_argument("--train-images", type=int, default=5200, help="training images per run (80%% of the pool)")
    parser.add_argument("--wide", action="store_true", help="also a whole cell of every method alone, per method and in one bank")
    args = parser.parse_args()
    device = select_device(args.device)
    configure_threads(2 if args.quick else 8)
    args.steps, args.repeats, args.warmup, args.pool_batches = (1, 1, 1, 1) if args.quick else (10, 3, 3, 4)
    batch = 2 if args.quick else args.batch_size
    paper = load_config(PAPER)
    pairs = args.pairs or list(paper["pairs"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"GPU check on {name}: batch {batch}, banks of {len(paper['lambdas'])}, method {args.method}")

    totals = {"without banks": 0.0, "with banks": 0.0}
    for precision in ("bf16", "fp32"):
        config = copy.deepcopy(paper)
        config["training"].update(batch_size=batch, mixed_precision=precision)
        print(f"\n{precision}")
        print_header()
        for pair in pairs:
            (row,) = measure_pair(config, pair, [args.method], device, args)
            without, with_banks = grid_hours(config, row, args.train_images)
            print(f"  grid of {pair} in {precision}: {without:.0f} GPU-hours one run per job, {with_banks:.0f} with banks")
            if precision == "bf16":
                totals["without banks"] += without
                totals["with banks"] += with_banks
    if args.wide:
        config = copy.deepcopy(paper)
        config["training"].update(batch_size=batch, mixed_precision="bf16")
        cells, images = len(paper["rhos"]) * len(paper["seeds"]), args.train_images * paper["training"]["epochs"]
        print("\nbf16, every method of a (pair, rho, seed) cell")
        for pair in pairs:
            row = measure_wide(config, pair, layer_wise(config), device, args)
            hours = {way: cells * images * seconds / 3600 for way, seconds in
                     (("alone", row.solo), ("banks of lambdas", row.lambdas), ("one bank", row.wide))}
            print(f"  grid of {pair}: " + ", ".join(f"{h:.0f} GPU-hours {way}" for way, h in hours.items()) +
                  f"; peak {row.wide_peak_mb:.0f} MB in one bank of {row.n}")
    count = 16 if args.quick else 2048
    paths = measure_data_paths(count, batch, min(args.workers, 2) if args.quick else args.workers, paper["data"], device)
    print()
    print_data_paths(paths, paper["training"]["epochs"])
    print(f"decoded training images of one job: {args.train_images * paths.decoded_bytes_per_image / 1e9:.1f} GB")
    print(f"paper grid (bf16, {paper['training']['epochs']} epochs, {args.train_images} images): "
          f"{totals['without banks']:.0f} GPU-hours one run per job, {totals['with banks']:.0f} with banks")


if __name__ == "__main__":
    main()
