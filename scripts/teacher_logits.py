#!/usr/bin/env python
"""Compute the teacher's subtask logits on the train/val/test splits of one (rho, seed)."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.io import write_json
from subtask_distill.runtime import select_device
from subtask_distill.training.jobs import compute_teacher_logits


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True, help="teacher-student pair in the config")
    p.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint")
    p.add_argument("--rho", type=cli.grid_value, required=True, help="rho of the splits (recorded in the accuracy JSON)")
    p.add_argument("--seed", type=int, required=True, help="seed of the splits (recorded in the accuracy JSON)")
    p.add_argument("--splits", type=Path, required=True, help="split .npz (embedded) or manifest .npz (ImageNet) of this rho")
    p.add_argument("--out", type=Path, required=True, help="output .npz of logits")
    p.add_argument("--accuracy", type=Path, required=True, help="output JSON of the teacher's accuracy per split")
    args = p.parse_args()
    config, log = cli.setup(args, "teacher_logits")
    device = select_device(config["runtime"]["device"])
    acc = compute_teacher_logits(config, args.pair, args.teacher, args.splits, args.seed, args.out, device)
    write_json(args.accuracy, {"pair": args.pair, "rho": args.rho, "seed": args.seed, **acc})
    log.info("teacher subtask accuracy: %s", ", ".join(f"{k} {v:.2f}" for k, v in acc.items()))


if __name__ == "__main__":
    main()
