#!/usr/bin/env python
"""Distil the teacher into one student: one (pair, method, rho, lambda, seed) of the grid."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.distill import run_student
from subtask_distill.runtime import select_device
from subtask_distill.study import Run, format_number


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--rho", type=float, required=True)
    p.add_argument("--lam", type=float, required=True, help="weight of the layer losses (0 for output-only KD)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--splits", type=Path, required=True, help="split .npz of this (rho, seed) from contaminate.py")
    p.add_argument("--teacher-logits", type=Path, required=True, help="logits .npz from teacher_logits.py")
    p.add_argument("--teacher", type=Path, help="teacher checkpoint (layer-wise methods)")
    p.add_argument("--subspace", type=Path, help="fitted subspace of this (pair, rho, seed) (SubDistill)")
    p.add_argument("--cache-dir", type=Path, help="folder of cached teacher features shared across runs (fixed inputs only)")
    p.add_argument("--resume-file", type=Path, help="per-epoch resume checkpoint: continued from if present, deleted at the end")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for student.pt and metrics.json")
    args = p.parse_args()
    config, log = cli.setup(args, "train_student")
    for key, known in (("pair", config["pairs"]), ("method", config["methods"])):
        if getattr(args, key) not in known:
            p.error(f"--{key} {getattr(args, key)!r} is not in the config ({', '.join(known)})")
    run = Run(args.pair, args.method, format_number(args.rho), format_number(args.lam), args.seed)
    device = select_device(config["runtime"]["device"])
    run_student(
        config, run, args.splits, args.teacher_logits, args.out_dir, device, log,
        teacher_path=args.teacher, subspace_path=args.subspace, cache_dir=args.cache_dir, resume_path=args.resume_file,
    )


if __name__ == "__main__":
    main()
