#!/usr/bin/env python
"""Fit SubDistill's teacher subspace for every paired layer of one (pair, rho, seed)."""

import time
from pathlib import Path

from subtask_distill import cli
from subtask_distill.io import write_json
from subtask_distill.methods.subspace import SUBSPACE_KINDS
from subtask_distill.runtime import select_device
from subtask_distill.training.jobs import fit_pair_subspaces


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--kind", choices=SUBSPACE_KINDS, default="subdistill", help="subdistill (M of the paper) or pca (M = S_a)")
    p.add_argument("--seed", type=int, required=True, help="run seed: the training split and the sampled positions")
    p.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint")
    p.add_argument("--splits", type=Path, required=True, help="split .npz of this (rho, seed) from contaminate.py")
    p.add_argument("--out", type=Path, required=True, help="output subspace file (.pt)")
    p.add_argument("--summary", type=Path, required=True, help="output JSON: variance captured per layer")
    args = p.parse_args()
    config, log = cli.setup(args, "fit_subspace")
    start = time.perf_counter()
    device = select_device(config["runtime"]["device"])
    layers = fit_pair_subspaces(config, args.pair, args.kind, args.seed, args.teacher, args.splits, args.out, device)
    for layer in layers:
        log.info(
            "%s: %d of %d channels, %.1f%% of the activation variance",
            layer["teacher_layer"], layer["directions"], layer["teacher_channels"], 100 * layer["captured_variance"],
        )
    write_json(args.summary, {"kind": args.kind, "layers": layers, "wall_time_s": time.perf_counter() - start})


if __name__ == "__main__":
    main()
