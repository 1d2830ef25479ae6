#!/usr/bin/env python
"""Train the embedded teacher on images of all classes (clean, or biased: see teacher_training.artifact_rho); report its accuracy."""

import time
from pathlib import Path

import torch

from subtask_distill import cli
from subtask_distill.artifacts import describe_artifact
from subtask_distill.data.embedded import biased_teacher_images
from subtask_distill.data.tensors import images_to_tensor
from subtask_distill.io import load_arrays, write_json
from subtask_distill.models.build import build_network, save_checkpoint
from subtask_distill.provenance import provenance
from subtask_distill.runtime import seed_everything, select_device
from subtask_distill.training.classifier import train_classifier
from subtask_distill.training.evaluate import accuracy, predict_logits


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True, help="teacher-student pair in the config")
    p.add_argument("--teacher-set", type=Path, required=True, help="teacher set .npz from synthesize_data.py")
    p.add_argument("--subtask-base", type=Path, required=True, help="subtask base .npz (clean subtask test images)")
    p.add_argument("--checkpoint", type=Path, required=True, help="output teacher checkpoint")
    p.add_argument("--metrics", type=Path, required=True, help="output JSON of the teacher's accuracies")
    p.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed (default: 0)")
    args = p.parse_args()
    config, log = cli.setup(args, "train_teacher")
    if args.pair not in config["pairs"]:
        p.error(f"--pair {args.pair!r} is not a pair of the config ({', '.join(config['pairs'])})")
    spec = config["pairs"][args.pair]["teacher"]
    device = select_device(config["runtime"]["device"])
    start = time.perf_counter()

    teacher_set, base = load_arrays(args.teacher_set), load_arrays(args.subtask_base)
    mean, std = base["channel_mean"], base["channel_std"]
    train_x, bias = teacher_set["train_x"], config["teacher_training"]["artifact_rho"]
    if bias > 0:
        train_x, codes = biased_teacher_images(teacher_set, base, config["data"], bias)
        log.info("a biased teacher: %d of its %d training images carry the %s", int((codes >= 0).sum()), len(codes),
                 describe_artifact(config["data"]["artifact"]))
    x, y = images_to_tensor(train_x, mean, std), torch.from_numpy(teacher_set["train_y"])
    x_test, y_test = images_to_tensor(teacher_set["test_x"], mean, std), torch.from_numpy(teacher_set["test_y"])
    num_classes = int(y.max()) + 1
    generator = seed_everything(args.seed)
    model = build_network(spec, num_classes=num_classes).to(device)
    log.info("teacher %s: %d parameters, %d training images of %d classes", spec["arch"],
             sum(p.numel() for p in model.parameters()), len(x), num_classes)
    history = train_classifier(model, x, y, config["teacher_training"], generator, log, eval_set=(x_test, y_test), device=device)

    subtask = config["data"]["subtask_classes"]
    all_logits = predict_logits(model, x_test, device=device)
    subtask_logits = predict_logits(model, images_to_tensor(base["test_x"], mean, std), device=device)[:, subtask]
    metrics = {
        "all_classes_test_acc": accuracy(all_logits, y_test),
        "subtask_test_acc": accuracy(subtask_logits, base["test_y"]),
        "num_classes": num_classes,
        "subtask_classes": subtask,
        "artifact_rho": bias,
        "history": history,
        "wall_time_s": time.perf_counter() - start,
        "provenance": provenance(config),
    }
    save_checkpoint(args.checkpoint, model.cpu(), spec, num_classes=num_classes)
    write_json(args.metrics, metrics)
    log.info("teacher accuracy: %.2f%% on all %d classes, %.2f%% on the subtask logits (clean test images)",
             metrics["all_classes_test_acc"], num_classes, metrics["subtask_test_acc"])


if __name__ == "__main__":
    main()
