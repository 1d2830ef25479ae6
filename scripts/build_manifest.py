#!/usr/bin/env python
"""Scan the ImageNet subtask folders and write the contamination manifest of one rho (all seeds).

Every image is opened once here, so an unreadable file stops the study at this
CPU step, naming the file, before any GPU job runs.
"""

from pathlib import Path

from subtask_distill import cli
from subtask_distill.artifacts import describe_artifact
from subtask_distill.data.contamination import EVALUATED_SPLITS
from subtask_distill.data.imagenet import build_manifest, check_readable, save_manifest, scan_imagenet, split_of
from subtask_distill.data.sources import study_artifact


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--rho", type=float, required=True, help="contamination rate (see data.artifact)")
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="run seeds (each has its own validation split)")
    p.add_argument("--out", type=Path, required=True, help="output manifest .npz")
    args = p.parse_args()
    config, log = cli.setup(args, "build_manifest")
    data = config["data"]
    root = Path(data["imagenet_root"])
    scan = scan_imagenet(root, data["wnids"])
    for name, images in scan.items():
        check_readable(root, images.paths)
        log.info("%s: %d images in %d classes, all readable", name, len(images.paths), len(data["wnids"]))
    manifest = build_manifest(scan, study_artifact(data), args.rho, data, args.seeds)
    save_manifest(args.out, manifest)
    log.info(describe_artifact(data["artifact"]))
    for split in EVALUATED_SPLITS:
        view = split_of(manifest, split, args.seeds[0])
        log.info("seed %d %s: %d images, %d with the artifact", args.seeds[0], split, len(view), int((view.artifact >= 0).sum()))


if __name__ == "__main__":
    main()
