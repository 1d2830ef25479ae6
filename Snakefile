# Subtask knowledge distillation under spurious correlation.
# Configuration, validation and includes live here; each stage is a file in rules/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/teachers.smk"
include: "rules/distill.smk"
include: "rules/aggregate.smk"


rule all:
    default_target: True
    input:
        rules.table.output,
        rules.preview_data.output,
        expand(f"{RESULTS}/teachers/{{pair}}/teacher_metrics.json", pair=PAIRS),
