# Shared by every rule: config validation, the grid, wildcard constraints, helpers.
import json
import re
from pathlib import Path

from snakemake.utils import validate

from subtask_distill.config import check_semantics
from subtask_distill.methods import get_method
from subtask_distill.study import format_number, runs
from subtask_distill.subspace import SUBSPACE_KINDS

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
# Subspace kinds needed by the configured methods (SubDistill: "subdistill", its PCA ablation: "pca").
KINDS = sorted({get_method(m).subspace for m in METHODS} - {None})


def one_of(values):
    return "|".join(re.escape(str(v)) for v in values)


wildcard_constraints:
    pair=one_of(PAIRS),
    method=one_of(METHODS),
    rho=one_of(RHOS),
    lam=one_of(sorted({run.lam for run in RUNS})),
    seed=one_of(SEEDS),
    kind=one_of(SUBSPACE_KINDS),


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


def teacher_checkpoint(pair="{pair}"):
    return f"{RESULTS}/teachers/{pair}/teacher.pt"


def subspace_file(pair="{pair}", kind="{kind}", rho="{rho}", seed="{seed}", ext="pt"):
    return f"{RESULTS}/subspaces/{pair}/{kind}/rho{rho}/seed{seed}.{ext}"


def student_inputs(wildcards):
    """A run's inputs: always the splits and teacher logits; the teacher when it runs
    (layer-wise methods, or any method with teacher_outputs: online) and a subspace when the method needs one.
    """
    method = get_method(wildcards.method)
    inputs = {
        "splits": splits_file(wildcards.rho, wildcards.seed),
        "teacher_logits": teacher_logits_file(
            wildcards.pair, wildcards.rho, wildcards.seed
        ),
    }
    if method.uses_layers or config["training"]["teacher_outputs"] == "online":
        inputs["teacher"] = teacher_checkpoint(wildcards.pair)
    if method.subspace:
        inputs["subspace"] = subspace_file(
            wildcards.pair, method.subspace, wildcards.rho, wildcards.seed
        )
    return inputs


def optional_student_args(wildcards, input):
    return " ".join(
        f"--{name} {input[name]}"
        for name in ("teacher", "subspace")
        if name in input.keys()
    )


def analysis_file(pair, role, rho):
    return f"{RESULTS}/analysis/{pair}/{role}/rho{rho}.npz"


def pair_runs(pair):
    return [run for run in RUNS if run.pair == pair]


def figure_file(pair, kind):
    return f"{RESULTS}/figures/{pair}_{kind}.png"
