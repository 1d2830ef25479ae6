#!/usr/bin/env python
"""Write the contaminated train/val/test splits of one (rho, seed)."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.artifacts import describe_artifact
from subtask_distill.data.contamination import EVALUATED_SPLITS
from subtask_distill.data.embedded import build_splits
from subtask_distill.io import load_arrays, save_arrays


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--base", type=Path, required=True, help="subtask base .npz from synthesize_data.py")
    p.add_argument("--rho", type=float, required=True, help="contamination rate (see data.artifact)")
    p.add_argument("--seed", type=int, required=True, help="run seed: chooses the validation split")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    args = p.parse_args()
    config, log = cli.setup(args, "contaminate")
    splits = build_splits(load_arrays(args.base), config["data"], args.rho, args.seed)
    save_arrays(args.out, splits)
    log.info(describe_artifact(config["data"]["artifact"]))
    for split in EVALUATED_SPLITS:
        codes = splits[f"{split}_artifact"]
        log.info(
            "%s: %d images, %d with the artifact, naming the image's class for %d",
            split, len(codes), int((codes >= 0).sum()), int((codes == splits[f"{split}_y"]).sum()),
        )


if __name__ == "__main__":
    main()
