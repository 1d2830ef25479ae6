#!/usr/bin/env python
"""Write the contaminated train/val/test splits of one (rho, seed)."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.data.contamination import SPLITS
from subtask_distill.data.embedded import build_splits
from subtask_distill.io import load_arrays, save_arrays


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--base", type=Path, required=True, help="subtask base .npz from synthesize_data.py")
    p.add_argument("--rho", type=float, required=True, help="fraction of each split that carries a digit")
    p.add_argument("--seed", type=int, required=True, help="run seed: chooses the validation split")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    args = p.parse_args()
    config, log = cli.setup(args, "contaminate")
    splits = build_splits(load_arrays(args.base), config["data"], args.rho, args.seed)
    save_arrays(args.out, splits)
    for split in SPLITS:
        digits = splits[f"{split}_digit"]
        log.info(
            "%s: %d images, %d with a digit, digit = class for %d",
            split, len(digits), int((digits >= 0).sum()), int((digits == splits[f"{split}_y"]).sum()),
        )


if __name__ == "__main__":
    main()
