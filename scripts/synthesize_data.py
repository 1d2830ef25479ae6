#!/usr/bin/env python
"""Synthesise the embedded study's base data: the teacher set and the subtask pool."""

import time
from pathlib import Path

from subtask_distill import cli
from subtask_distill.data.embedded import synthesize
from subtask_distill.io import save_arrays


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--teacher-set", type=Path, required=True, help="output .npz: clean images of all classes")
    p.add_argument("--subtask-base", type=Path, required=True, help="output .npz: clean subtask pool, test set, digits")
    args = p.parse_args()
    config, log = cli.setup(args, "synthesize_data")
    start = time.perf_counter()
    teacher_set, base = synthesize(config["data"], workers=args.threads)
    save_arrays(args.teacher_set, teacher_set)
    save_arrays(args.subtask_base, base)
    log.info(
        "teacher set %d train / %d test images; subtask pool %d, test %d, digits %d + %d; %.1fs",
        len(teacher_set["train_y"]), len(teacher_set["test_y"]), len(base["pool_y"]), len(base["test_y"]),
        len(base["digits_train_y"]), len(base["digits_test_y"]), time.perf_counter() - start,
    )


if __name__ == "__main__":
    main()
