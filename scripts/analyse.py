#!/usr/bin/env python
"""Analysis artifacts of one model: penultimate test features and occlusion relevance.

Every model is scored on the test split of the study's largest rho (relevance on
its contaminated images), whatever rho it was trained at.
"""

from pathlib import Path

import numpy as np
import torch

from subtask_distill import cli
from subtask_distill.analysis.features import analyse
from subtask_distill.data.sources import clean_test_images, split_arrays, study_artifact
from subtask_distill.io import save_arrays
from subtask_distill.models.build import build_network, load_subtask_teacher
from subtask_distill.runtime import select_device


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--role", choices=("teacher", "student"), required=True)
    p.add_argument("--rho", type=cli.grid_value, help="the rho a student was trained at (recorded in the output)")
    p.add_argument("--scored-rho", type=cli.grid_value, required=True, help="rho of --splits: the images every model is scored on")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits (the test split is the same for every seed)")
    p.add_argument("--checkpoint", type=Path, required=True, help="teacher.pt or a run's student.pt")
    p.add_argument("--splits", type=Path, required=True, help="split (embedded) or manifest (ImageNet) .npz of --scored-rho")
    p.add_argument("--subtask-base", type=Path, help="embedded study: clean images and digits")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    args = p.parse_args()
    if args.role == "student" and args.rho is None:
        p.error("--rho is required for a student")
    config, log = cli.setup(args, "analyse")
    device = select_device(config["runtime"]["device"])
    spec = config["pairs"][args.pair][args.role]
    num_classes = len(config["data"]["subtask_classes"])
    if args.role == "teacher":
        model = load_subtask_teacher(args.checkpoint, spec, config["data"]["subtask_classes"], device)
    else:
        model = build_network(spec, num_classes=num_classes)
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True)["state_dict"])
    data = config["data"]
    if data["kind"] == "embedded" and args.subtask_base is None:
        p.error("--subtask-base is required for the embedded study")
    splits = split_arrays(data, args.splits, args.seed, which=("test",), workers=data["workers"])
    artifact = study_artifact(data, args.subtask_base)
    clean = clean_test_images(data, splits, args.subtask_base, artifact, workers=data["workers"])
    result = analyse(model, splits, clean, artifact, config["analysis"]["max_images"], device)
    extra = {"pair": np.array(args.pair), "scored_rho": np.array(args.scored_rho)}
    if args.role == "student":
        extra["rho"] = np.array(args.rho)
    else:  # the figures draw relevance maps over these images
        extra["images"] = splits["test_x"][result["relevance_images"]]
    save_arrays(args.out, {**result, **extra})
    on_artifact = np.abs(result["artifact_relevance"][np.isfinite(result["artifact_relevance"])])
    log.info(
        "%s: features %s, relevance on %d images of rho %s, mean |R| of the artifact %.3f vs a patch %.3f",
        args.role, result["features"].shape, len(result["relevance"]), args.scored_rho,
        float(on_artifact.mean()) if len(on_artifact) else float("nan"), float(np.abs(result["relevance"]).mean()),
    )


if __name__ == "__main__":
    main()
