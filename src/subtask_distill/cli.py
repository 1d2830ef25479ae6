"""What every script shares: a --config/--threads parser and process set-up."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from .config import load_config
from .runtime import configure_threads, setup_logging
from .study import format_number


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--config",
        default="config.yaml",
        help="study config: a YAML file, or an inline YAML/JSON mapping of some of its sections (default: config.yaml)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default: 1)")
    return p


def setup(args: argparse.Namespace, name: str) -> tuple[dict[str, Any], logging.Logger]:
    """Validate the config, size the thread pool, and return (config, logger)."""
    log = setup_logging(name)
    configure_threads(args.threads)
    return load_config(args.config), log


def grid_value(text: str) -> str:
    """An argparse type for rho and lambda: the canonical string of the run's path ("0.50" -> "0.5")."""
    try:
        return format_number(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
