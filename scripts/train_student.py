#!/usr/bin/env python
"""Distil the teacher into the students of one (pair, rho, seed), trained as a bank (the same batches, one
teacher pass per batch): each method given with each lambda given (an output-only method, such as KD, with
its one lambda, 0). One method and one lambda is a single run."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.methods import get_method
from subtask_distill.runtime import select_device
from subtask_distill.study import bank_runs, parse_variant
from subtask_distill.training.factory import bank_problem
from subtask_distill.training.jobs import RunFiles, run_bank


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--method", nargs="+", required=True,
                   help="methods of the config, each with its layer subset if any (at, at-L12)")
    p.add_argument("--rho", type=cli.grid_value, required=True)
    p.add_argument("--lam", type=cli.grid_value, nargs="+", required=True,
                   help="weights of the layer losses, one student each (0 for output-only KD)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--splits", type=Path, required=True, help="split .npz of this (rho, seed) from contaminate.py")
    p.add_argument("--teacher-logits", type=Path, required=True, help="logits .npz from teacher_logits.py")
    p.add_argument("--teacher", type=Path, help="teacher checkpoint (layer-wise methods)")
    p.add_argument("--subspace", type=Path, nargs="+", default=[],
                   help="fitted subspaces of this (pair, rho, seed), one per kind the methods need (SubDistill)")
    p.add_argument("--cache-dir", type=Path, help="folder of cached teacher features shared across runs (fixed inputs only)")
    p.add_argument("--resume-file", type=Path, help="the bank's per-epoch resume checkpoint: continued from if present, deleted at the end")
    p.add_argument("--out-dir", type=Path, nargs="+", required=True,
                   help="folder for student.pt and metrics.json, one per run, in the order of --method then --lam")
    args = p.parse_args()
    config, log = cli.setup(args, "train_student")
    methods = {variant: parse_variant(variant)[0] for variant in args.method}
    for key, value, known in [("pair", args.pair, config["pairs"]), *(("method", m, config["methods"]) for m in methods.values())]:
        if value not in known:
            p.error(f"--{key} {value!r} is not in the config ({', '.join(known)})")
    uses_layers = {m: get_method(m).uses_layers for m in methods.values()}
    runs = bank_runs(args.pair, args.method, args.rho, args.lam, args.seed, uses_layers)
    if len(args.out_dir) != len(runs):
        p.error(f"--out-dir needs one folder per run: {len(runs)} runs ({', '.join(r.variant + ' ' + r.lam for r in runs)}),"
                f" {len(args.out_dir)} folders")
    problem = bank_problem(runs)
    if problem:
        p.error(problem)
    device = select_device(config["runtime"]["device"])
    files = RunFiles(args.splits, args.teacher_logits, args.teacher, tuple(args.subspace), args.cache_dir)
    run_bank(config, runs, files, args.out_dir, device, log, resume_path=args.resume_file)


if __name__ == "__main__":
    main()
