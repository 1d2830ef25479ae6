"""The study grid and its file layout, shared by the workflow and the scripts.

Kept free of torch so the Snakefile can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

# Output-only KD has no layer loss, so its single "lambda" is 0.
NO_LAYER_LOSS_LAMBDA = 0.0
# A layer-wise method uses all the pair's paired layers unless layer_subsets names some.
ALL_LAYERS = "all"
_SUBSET_MARK = "-L"


def format_number(value: float) -> str:
    """How a rho or lambda appears in paths and wildcards: 0.5 -> '0.5', 1.0 -> '1'."""
    return np.format_float_positional(float(value), trim="-")


def subset_name(subset: str | list[int]) -> str:
    """How a layer subset of the config appears in names: "all", or its 1-based positions ("12" for [1, 2])."""
    return ALL_LAYERS if subset == ALL_LAYERS else "".join(str(position) for position in subset)


def variant_name(method: str, layers: str) -> str:
    """A method with a layer subset, as it appears in run folders and Table I: "at" (all layers), "at-L12"."""
    return method if layers == ALL_LAYERS else f"{method}{_SUBSET_MARK}{layers}"


def parse_variant(name: str) -> tuple[str, str]:
    """(method, layers) of a variant name; the inverse of ``variant_name``."""
    method, mark, layers = name.partition(_SUBSET_MARK)
    if not mark:
        return name, ALL_LAYERS
    if not layers.isdigit():
        raise ValueError(f"{name!r}: a layer subset is 1-based layer positions, as in at-L12")
    return method, layers


def layer_positions(layers: str, count: int) -> list[int]:
    """0-based positions of a subset's layers among ``count`` paired layers."""
    if layers == ALL_LAYERS:
        return list(range(count))
    positions = [int(digit) - 1 for digit in layers]
    if not positions or min(positions) < 0 or max(positions) >= count:
        raise ValueError(f"layer subset {layers!r} does not fit {count} paired layers")
    return positions


@dataclass(frozen=True)
class Run:
    """One student training: a cell of the grid. ``layers`` is the layer subset of a layer-wise method."""

    pair: str
    method: str
    rho: str
    lam: str
    seed: int
    layers: str = ALL_LAYERS

    @property
    def variant(self) -> str:
        return variant_name(self.method, self.layers)

    @property
    def path(self) -> str:
        """Run folder relative to results/<study>/."""
        return f"runs/{self.pair}/{self.variant}/rho{self.rho}/lam{self.lam}/seed{self.seed}"


def lambdas_for(config: dict[str, Any], uses_layers: bool) -> list[str]:
    if not uses_layers:
        return [format_number(NO_LAYER_LOSS_LAMBDA)]
    return [format_number(lam) for lam in config["lambdas"]]


def subsets_for(config: dict[str, Any], uses_layers: bool) -> list[str]:
    if not uses_layers:
        return [ALL_LAYERS]
    return [subset_name(subset) for subset in config.get("layer_subsets", [ALL_LAYERS])]


def runs(config: dict[str, Any], uses_layers: dict[str, bool]) -> Iterator[Run]:
    """Every (pair, method and layer subset, rho, lambda, seed) of the study.

    ``uses_layers`` maps each configured method to whether it has a layer loss
    (from the method registry), which decides its lambda grid and layer subsets.
    """
    for pair in config["pairs"]:
        for method in config["methods"]:
            for layers in subsets_for(config, uses_layers[method]):
                for rho in config["rhos"]:
                    for lam in lambdas_for(config, uses_layers[method]):
                        for seed in config["seeds"]:
                            yield Run(pair, method, format_number(rho), lam, int(seed), layers)


# What a training job trains together (training.bank): one run; the lambdas of a layer-wise method with its
# layer subset; or every run of a (pair, rho, seed), all methods and lambdas.
BANK_SCOPES = ("none", "lambdas", "methods")


def bank_key(run: Run, scope: str, uses_layers: bool) -> tuple:
    """Runs with the same key train in one job: see ``BANK_SCOPES``. Output-only KD has a single lambda,
    so it trains alone unless the bank spans methods."""
    if scope == "methods":
        return (run.pair, run.rho, run.seed)
    if scope == "lambdas" and uses_layers:
        return (run.pair, run.variant, run.rho, run.seed)
    if scope not in BANK_SCOPES:
        raise ValueError(f"training.bank must be one of {BANK_SCOPES}, got {scope!r}")
    return (run.pair, run.variant, run.rho, run.lam, run.seed)


def banks(all_runs: list[Run], scope: str, uses_layers: dict[str, bool]) -> list[list[Run]]:
    """The grid's runs, grouped into the banks that train them, in grid order."""
    grouped: dict[tuple, list[Run]] = {}
    for run in all_runs:
        grouped.setdefault(bank_key(run, scope, uses_layers[run.method]), []).append(run)
    return list(grouped.values())


def bank_runs(pair: str, variants: list[str], rho: str, lams: list[str], seed: int, uses_layers: dict[str, bool]) -> list[Run]:
    """The runs of one training job, in the order of its output folders: each variant with every lambda of
    ``lams`` (an output-only method: its one lambda)."""
    out = []
    for variant in variants:
        method, layers = parse_variant(variant)
        for lam in lams if uses_layers[method] else lambdas_for({}, False):
            out.append(Run(pair, method, rho, lam, seed, layers))
    return out
