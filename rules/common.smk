# Shared by every rule: config validation, the grid, wildcard constraints, helpers.
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from subtask_distill.config import check_layers, is_pretrained, validate_config
from subtask_distill.data.checks import data_root_problems
from subtask_distill.methods import get_method
from subtask_distill.study import bank_runs, banks, format_number, parse_variant, runs
from subtask_distill.methods.subspace import SUBSPACE_KINDS
from subtask_distill.reporting.table import chosen_runs as table_cells, read_table_csv
from subtask_distill.training.teacher_source import needs_teacher, resolve_mode

# The schema (types, ranges, unknown keys, defaults filled in), registry and cross-key checks, then
# the pairs' layers against their architectures: one line per problem, naming the key.
config.update(validate_config(config))
check_layers(config)

RESULTS = f"results/{config['study']}"
DATA_KIND = config["data"]["kind"]
# Cached teacher outputs for fixed inputs; the teacher runs online when training images are augmented.
TEACHER_OUTPUTS = resolve_mode(
    config["training"]["teacher_outputs"], config["data"]["augment"]
)
SCRIPTS = Path(workflow.basedir) / "scripts"
PAIRS = list(config["pairs"])
METHODS = list(config["methods"])
RHOS = [format_number(rho) for rho in config["rhos"]]
SEEDS = [int(seed) for seed in config["seeds"]]
USES_LAYERS = {m: get_method(m).uses_layers for m in METHODS}
RUNS = list(runs(config, USES_LAYERS))
# The {method} wildcard: a method, or a layer-wise method with a layer subset (at-L12; layer_subsets).
VARIANTS = list(dict.fromkeys(run.variant for run in RUNS))
# Banks (training.bank): what one job trains. lambdas: all the lambdas of a layer-wise variant's
# (pair, rho, seed) (rule train_bank), the other variants one run per job (train_student);
# methods: every run of a (pair, rho, seed) (train_wide_bank); none: one run per job.
BANK_SCOPE = config["training"]["bank"]
BANK_LAMBDAS = [format_number(lam) for lam in config["lambdas"]]
BANKED = [
    v for v in VARIANTS if BANK_SCOPE == "lambdas" and USES_LAYERS[parse_variant(v)[0]]
]
SOLO = [v for v in VARIANTS if v not in BANKED and BANK_SCOPE != "methods"]
WIDE_PAIRS = PAIRS if BANK_SCOPE == "methods" else []
TRAINING_JOBS = len(banks(RUNS, BANK_SCOPE, USES_LAYERS))
BANKS_SUMMARY = {
    "none": "one run per job",
    "lambdas": f"{len(BANKED)} variant(s) in banks of {len(BANK_LAMBDAS)} lambdas,"
    f" {len(SOLO)} one run per job",
    "methods": "one bank per pair, rho and seed",
}[BANK_SCOPE]
# The selection rules; the first chooses the checkpoints the figures analyse.
SELECTION = config["selection"]
# Subspace kinds needed by the configured methods (SubDistill: "subdistill", its PCA ablation: "pca").
KINDS = sorted({get_method(m).subspace for m in METHODS} - {None})
# Every model is analysed on the test images of the largest rho, whatever rho it was trained at
# (the paper's Fig. 3 scores its 0% and 100% students on the same contaminated images).
SCORED_RHO = format_number(max(config["rhos"]))


def one_of(values):
    """A wildcard pattern matching exactly ``values`` (none: a pattern that matches nothing)."""
    return "|".join(re.escape(str(v)) for v in values) or "(?!)"


wildcard_constraints:
    pair=one_of(PAIRS),
    method=one_of(VARIANTS),
    rho=one_of(RHOS),
    lam=one_of(sorted({run.lam for run in RUNS})),
    seed=one_of(SEEDS),
    kind=one_of(SUBSPACE_KINDS),


def job_config(*sections, pair=None, method=None):
    """The config sections a job reads, as inline JSON for its --config (``method``: a {method} wildcard).

    Passing only these (rather than the config file) means a job reruns when a
    setting it uses changes, and only then (Snakemake's params trigger).
    """
    subset = {key: config[key] for key in sections}
    if pair is not None:
        subset["pairs"] = {pair: config["pairs"][pair]}
    if method is not None:
        name = parse_variant(method)[0]
        subset["methods"] = {name: config["methods"][name]}
    return json.dumps(subset, sort_keys=True)


def log_path(rule, stem=""):
    return f"{RESULTS}/logs/{rule}/{stem}.log" if stem else f"{RESULTS}/logs/{rule}.log"


def benchmark_path(rule, stem=""):
    return (
        f"{RESULTS}/benchmarks/{rule}/{stem}.tsv"
        if stem
        else f"{RESULTS}/benchmarks/{rule}.tsv"
    )


def check_data_roots():
    """Stop before any job is submitted when an ImageNet study's data roots are unset or incomplete.

    Called when the workflow starts for real: a dry run works before the data is staged,
    and the prefetch target (run before staging, on a login node) needs only MNIST's root.
    """
    prefetch_only = {job.rule.name for job in workflow.dag.targetjobs} == {"prefetch"}
    problems = data_root_problems(config["data"], need_imagenet=not prefetch_only)
    if problems:
        raise WorkflowError(
            "the study's data is not ready:\n" + "\n".join(f"  {p}" for p in problems)
        )


def splits_file(rho="{rho}", seed="{seed}"):
    """Embedded: the contaminated images of one (rho, seed); ImageNet: the manifest of one rho, for every seed."""
    if DATA_KIND == "imagenet":
        return f"{RESULTS}/data/manifest_rho{rho}.npz"
    return f"{RESULTS}/data/rho{rho}/seed{seed}.npz"


def relevance_base():
    """Embedded: the clean images and digit pools occlusion draws from (ImageNet: decoded from the sources)."""
    return (
        {"base": rules.synthesize_data.output.subtask_base}
        if DATA_KIND == "embedded"
        else {}
    )


def base_arg(wildcards, input):
    return f"--subtask-base {input.base}" if "base" in input.keys() else ""


def grows(amount):
    """A resource that grows with each retry: a job killed for memory or time gets more."""
    return lambda wildcards, attempt: amount * attempt


def pair_resources(pair):
    return config["pairs"][pair]["resources"]


def gpus(wildcards):
    return pair_resources(wildcards.pair)["gpu"]


def job_mem_mb(wildcards, attempt):
    """The pair's memory per job, more on each retry (a job killed for memory gets another chance)."""
    return pair_resources(wildcards.pair)["mem_mb"] * attempt


def job_runtime(share):
    """Minutes for a job that costs ``share`` of a student training, more on each retry."""

    def runtime(wildcards, attempt):
        return (
            max(10, round(pair_resources(wildcards.pair)["runtime"] * share)) * attempt
        )

    return runtime


def teacher_logits_file(pair="{pair}", rho="{rho}", seed="{seed}", ext="npz"):
    return f"{RESULTS}/teachers/{pair}/logits/rho{rho}/seed{seed}.{ext}"


def teacher_file(pair, metrics=False):
    """Checkpoint (or metrics) of a pair's teacher: imported by import_teacher when pretrained,
    else trained by train_teacher."""
    if is_pretrained(config["pairs"][pair]["teacher"]):
        return f"{RESULTS}/teachers/{pair}/pretrained.{'json' if metrics else 'pt'}"
    return f"{RESULTS}/teachers/{pair}/teacher{'_metrics.json' if metrics else '.pt'}"


def teacher_checkpoint(wildcards):
    return teacher_file(wildcards.pair)


def subspace_file(pair="{pair}", kind="{kind}", rho="{rho}", seed="{seed}", ext="pt"):
    return f"{RESULTS}/subspaces/{pair}/{kind}/rho{rho}/seed{seed}.{ext}"


def run_file(name, lam="{lam}", method="{method}"):
    """A file of one run's folder (wildcards left for the others)."""
    return f"{RESULTS}/runs/{{pair}}/{method}/rho{{rho}}/lam{lam}/seed{{seed}}/{name}"


def bank_files(name):
    """That file of every run of a bank of lambdas (one per lambda of the grid)."""
    return [run_file(name, lam) for lam in BANK_LAMBDAS]


# The runs of a wide bank of any (pair, rho, seed), in the order of its outputs and of the job's --out-dir.
WIDE_BANK = bank_runs("", VARIANTS, "", BANK_LAMBDAS, 0, USES_LAYERS)


def wide_bank_files(name):
    """That file of every run of a wide bank (every variant and lambda of the grid)."""
    return [run_file(name, run.lam, run.variant) for run in WIDE_BANK]


def student_inputs(wildcards):
    """A run's inputs: always the splits and teacher logits; the teacher when it runs
    (layer-wise methods, or any method with teacher_outputs: online) and a subspace when the method needs one.
    """
    method = get_method(parse_variant(wildcards.method)[0])
    inputs = {
        "splits": splits_file(wildcards.rho, wildcards.seed),
        "teacher_logits": teacher_logits_file(
            wildcards.pair, wildcards.rho, wildcards.seed
        ),
    }
    if needs_teacher(method.uses_layers, TEACHER_OUTPUTS):
        inputs["teacher"] = teacher_file(wildcards.pair)
    if method.subspace:
        inputs["subspace"] = subspace_file(
            wildcards.pair, method.subspace, wildcards.rho, wildcards.seed
        )
    return inputs


def wide_bank_inputs(wildcards):
    """The inputs of every run of a (pair, rho, seed): the teacher if any run needs it, each subspace
    kind any run needs."""
    inputs = {
        "splits": splits_file(wildcards.rho, wildcards.seed),
        "teacher_logits": teacher_logits_file(
            wildcards.pair, wildcards.rho, wildcards.seed
        ),
        "subspace": [
            subspace_file(wildcards.pair, kind, wildcards.rho, wildcards.seed)
            for kind in KINDS
        ],
    }
    if any(needs_teacher(USES_LAYERS[m], TEACHER_OUTPUTS) for m in METHODS):
        inputs["teacher"] = teacher_file(wildcards.pair)
    return inputs


def optional_student_args(wildcards, input):
    """--teacher and --subspace (one file, or a wide bank's several), where the job has them."""
    args = []
    for name in ("teacher", "subspace"):
        files = input.get(name, [])
        files = [files] if isinstance(files, str) else list(files)
        if files:
            args.append(f"--{name} " + " ".join(files))
    return " ".join(args)


def teacher_analysis_file(pair="{pair}"):
    return f"{RESULTS}/analysis/{pair}/teacher.npz"


def chosen_runs(pair=None):
    """The runs at lambda* (all seeds), the only ones the figures and the relevance table read.

    Known once Table I exists (`table` is a checkpoint), so only these runs get analysed,
    a third of the grid at the paper's 5 lambdas.
    """
    table = Path(checkpoints.table.get().output.csv).read_text()
    cells = table_cells(read_table_csv(table), SELECTION[0])
    return [
        run
        for run in RUNS
        if pair in (None, run.pair)
        and (run.pair, run.variant, run.rho, run.lam) in cells
    ]


def figure_file(pair, kind):
    return f"{RESULTS}/figures/{pair}_{kind}.png"
