# Shared by every rule: config validation, the grid, wildcard constraints, helpers.
import json
import re
from pathlib import Path

from snakemake.utils import validate

from subtask_distill.config import check_semantics
from subtask_distill.methods import get_method
from subtask_distill.study import format_number, runs

# Schema first (types, ranges, unknown keys), then registry and cross-key checks.
validate(config, "../schemas/config.schema.yaml")
check_semantics(config)

RESULTS = f"results/{config['study']}"
SCRIPTS = Path(workflow.basedir) / "scripts"
PAIRS = list(config["pairs"])
METHODS = list(config["methods"])
RHOS = [format_number(rho) for rho in config["rhos"]]
SEEDS = [int(seed) for seed in config["seeds"]]
RUNS = list(runs(config, {m: get_method(m).uses_layers for m in METHODS}))


def one_of(values):
    return "|".join(re.escape(str(v)) for v in values)


wildcard_constraints:
    pair=one_of(PAIRS),
    method=one_of(METHODS),
    rho=one_of(RHOS),
    lam=one_of(sorted({run.lam for run in RUNS})),
    seed=one_of(SEEDS),


def job_config(*sections, pair=None, method=None):
    """The config sections a job reads, as inline JSON for its --config.

    Passing only these (rather than the config file) means a job reruns when a
    setting it uses changes, and only then (Snakemake's params trigger).
    """
    subset = {key: config[key] for key in sections}
    if pair is not None:
        subset["pairs"] = {pair: config["pairs"][pair]}
    if method is not None:
        subset["methods"] = {method: config["methods"][method]}
    return json.dumps(subset, sort_keys=True)


def log_path(rule, stem=""):
    return f"{RESULTS}/logs/{rule}/{stem}.log" if stem else f"{RESULTS}/logs/{rule}.log"


def benchmark_path(rule, stem=""):
    return (
        f"{RESULTS}/benchmarks/{rule}/{stem}.tsv"
        if stem
        else f"{RESULTS}/benchmarks/{rule}.tsv"
    )


def splits_file(rho="{rho}", seed="{seed}"):
    return f"{RESULTS}/data/rho{rho}/seed{seed}.npz"


def teacher_logits_file(pair="{pair}", rho="{rho}", seed="{seed}", ext="npz"):
    return f"{RESULTS}/teachers/{pair}/logits/rho{rho}/seed{seed}.{ext}"
