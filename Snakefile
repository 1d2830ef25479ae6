# Subtask knowledge distillation under spurious correlation.
# Configuration, validation and includes live here; each stage is a file in rules/.
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import min_version

min_version("9.0")

# The workflow's own package, from this checkout: for Snakemake here, and for every job (also in
# an environment built by --sdm conda, which does not install it).
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))
# (Braces doubled twice: once for this f-string, once for Snakemake's own formatting.)
shell.prefix(
    f'set -euo pipefail; export PYTHONPATH="{SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; '
)


# The embedded study by default. A study given with --configfile replaces it rather than being
# merged into it (Snakemake merges config files key by key, which would mix the two studies' pairs).
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/teachers.smk"
include: "rules/subspace.smk"
include: "rules/distill.smk"
include: "rules/aggregate.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


# What the grid costs, before anything runs (a dry run shows it too).
logger.info(
    f"study {config['study']}: {len(RUNS)} student runs, trained by {TRAINING_JOBS} jobs ({BANKS_SUMMARY})"
)


# Downloads need the internet: on a cluster they run where Snakemake runs (the login node).
localrules:
    prefetch,
    prefetch_downloads,


onstart:
    check_data_roots()


rule all:
    default_target: True
    input:
        rules.build_report.output,
        rules.table.output,


rule figures:
    input:
        rules.build_report.input.figures,
        rules.relevance_table.output,


rule report:
    input:
        rules.build_report.output,


rule prefetch:
    input:
        rules.prefetch_downloads.output,
