#!/usr/bin/env python
"""Draw a grid of contaminated training and test images for each rho."""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.artifacts import describe_artifact
from subtask_distill.data.preview import preview_figure
from subtask_distill.io import atomic_path, load_arrays


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--splits", type=Path, nargs="+", required=True, help="split .npz files, one per rho")
    p.add_argument("--rhos", nargs="+", required=True, help="the rho of each split file, in the same order")
    p.add_argument("--out", type=Path, required=True, help="output .png")
    args = p.parse_args()
    if len(args.splits) != len(args.rhos):
        p.error("--splits and --rhos need the same number of values")
    config, log = cli.setup(args, "preview_data")
    description = describe_artifact(config["data"]["artifact"])
    figure = preview_figure({rho: load_arrays(path) for rho, path in zip(args.rhos, args.splits)}, description)
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    log.info("contaminated images for rho %s (%s): %s", ", ".join(args.rhos), description, args.out)


if __name__ == "__main__":
    main()
