"""The study grid and its file layout, shared by the workflow and the scripts.

Kept free of torch so the Snakefile can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

# Output-only KD has no layer loss, so its single "lambda" is 0.
NO_LAYER_LOSS_LAMBDA = 0.0


def format_number(value: float) -> str:
    """How a rho or lambda appears in paths and wildcards: 0.5 -> '0.5', 1.0 -> '1'."""
    return np.format_float_positional(float(value), trim="-")


@dataclass(frozen=True)
class Run:
    """One student training: a cell of the grid."""

    pair: str
    method: str
    rho: str
    lam: str
    seed: int

    @property
    def path(self) -> str:
        """Run folder relative to results/<study>/."""
        return f"runs/{self.pair}/{self.method}/rho{self.rho}/lam{self.lam}/seed{self.seed}"


def lambdas_for(config: dict[str, Any], uses_layers: bool) -> list[str]:
    if not uses_layers:
        return [format_number(NO_LAYER_LOSS_LAMBDA)]
    return [format_number(lam) for lam in config["lambdas"]]


def runs(config: dict[str, Any], uses_layers: dict[str, bool]) -> Iterator[Run]:
    """Every (pair, method, rho, lambda, seed) of the study.

    ``uses_layers`` maps each configured method to whether it has a layer loss
    (from the method registry), which decides its lambda grid.
    """
    for pair in config["pairs"]:
        for method in config["methods"]:
            for rho in config["rhos"]:
                for lam in lambdas_for(config, uses_layers[method]):
                    for seed in config["seeds"]:
                        yield Run(pair, method, format_number(rho), lam, int(seed))
