#!/usr/bin/env python
"""Distil the teacher into the students of one (pair, method, rho, seed), one per lambda, trained as a bank
(the same batches, one teacher pass per batch); a single lambda is a single run."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.runtime import select_device
from subtask_distill.study import Run, parse_variant
from subtask_distill.training.factory import bank_problem
from subtask_distill.training.jobs import RunFiles, run_bank


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--method", required=True, help="a method of the config, with its layer subset if any (at, at-L12)")
    p.add_argument("--rho", type=cli.grid_value, required=True)
    p.add_argument("--lam", type=cli.grid_value, nargs="+", required=True,
                   help="weights of the layer losses, one student each (0 for output-only KD)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--splits", type=Path, required=True, help="split .npz of this (rho, seed) from contaminate.py")
    p.add_argument("--teacher-logits", type=Path, required=True, help="logits .npz from teacher_logits.py")
    p.add_argument("--teacher", type=Path, help="teacher checkpoint (layer-wise methods)")
    p.add_argument("--subspace", type=Path, help="fitted subspace of this (pair, rho, seed) (SubDistill)")
    p.add_argument("--cache-dir", type=Path, help="folder of cached teacher features shared across runs (fixed inputs only)")
    p.add_argument("--resume-file", type=Path, help="the bank's per-epoch resume checkpoint: continued from if present, deleted at the end")
    p.add_argument("--out-dir", type=Path, nargs="+", required=True, help="folder for student.pt and metrics.json, one per --lam")
    args = p.parse_args()
    config, log = cli.setup(args, "train_student")
    method, layers = parse_variant(args.method)
    for key, value, known in (("pair", args.pair, config["pairs"]), ("method", method, config["methods"])):
        if value not in known:
            p.error(f"--{key} {value!r} is not in the config ({', '.join(known)})")
    if len(args.out_dir) != len(args.lam):
        p.error(f"--out-dir needs one folder per --lam: {len(args.lam)} lambdas, {len(args.out_dir)} folders")
    runs = [Run(args.pair, method, args.rho, lam, args.seed, layers) for lam in args.lam]
    problem = bank_problem(runs)
    if problem:
        p.error(problem)
    device = select_device(config["runtime"]["device"])
    files = RunFiles(args.splits, args.teacher_logits, args.teacher, args.subspace, args.cache_dir)
    run_bank(config, runs, files, args.out_dir, device, log, resume_path=args.resume_file)


if __name__ == "__main__":
    main()
