#!/usr/bin/env python
"""Import a pair's pretrained teacher (torchvision weights or a local checkpoint) as a teacher checkpoint.

Nothing is downloaded (compute nodes may be offline): torchvision weights must
already be in the torch.hub cache (see scripts/prefetch.py).
"""

import time
from pathlib import Path

from subtask_distill import cli
from subtask_distill.io import file_digest, write_json
from subtask_distill.models.build import save_checkpoint
from subtask_distill.models.pretrained import load_pretrained_teacher, weight_file, weight_source
from subtask_distill.provenance import provenance


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--pair", required=True, help="teacher-student pair in the config")
    p.add_argument("--out", type=Path, required=True, help="output teacher checkpoint (read by load_subtask_teacher)")
    p.add_argument(
        "--metrics", type=Path, required=True, help="output JSON: weight source, its SHA-256, parameter count"
    )
    args = p.parse_args()
    config, log = cli.setup(args, "import_teacher")
    if args.pair not in config["pairs"]:
        p.error(f"--pair {args.pair!r} is not a pair of the config ({', '.join(config['pairs'])})")
    spec = config["pairs"][args.pair]["teacher"]
    start = time.perf_counter()

    source_key = weight_source(spec, args.pair)
    source_file = weight_file(spec, args.pair)
    log.info(
        "teacher %s of pair %s: loading %s %s from %s",
        spec["arch"],
        args.pair,
        source_key,
        spec[source_key],
        source_file,
    )
    model = load_pretrained_teacher(spec, args.pair, allow_download=False)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    sha256 = file_digest(source_file)
    save_checkpoint(args.out, model, spec, num_classes=spec["num_classes"], weight_source=str(spec[source_key]))
    write_json(
        args.metrics,
        {
            "pair": args.pair,
            "arch": spec["arch"],
            "num_classes": spec["num_classes"],
            "source": {
                "key": f"pairs.{args.pair}.teacher.{source_key}",
                "value": spec[source_key],
                "file": str(source_file),
                "sha256": sha256,
            },
            "parameters": parameters,
            "wall_time_s": time.perf_counter() - start,
            "provenance": provenance(config),
        },
    )
    log.info("wrote %s (%d parameters, weights sha256 %s) and %s", args.out, parameters, sha256[:12], args.metrics)


if __name__ == "__main__":
    main()
