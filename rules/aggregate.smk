# The study's tidy tables, then lambda selection on validation accuracy and Table I. The table is
# a checkpoint: which runs get analysed (those at lambda*) is decided by its output.


rule collect_runs:
    input:
        [f"{RESULTS}/{run.path}/metrics.json" for run in RUNS],
    output:
        runs=f"{RESULTS}/runs.csv",
        history=f"{RESULTS}/history.csv",
    log:
        log_path("collect_runs"),
    benchmark:
        benchmark_path("collect_runs")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(2000),
        runtime=grows(10),
    params:
        script=SCRIPTS / "collect_runs.py",
    shell:
        "python {params.script} --metrics {input} --runs {output.runs} --history {output.history} > {log} 2>&1"


checkpoint table:
    input:
        runs=rules.collect_runs.output.runs,
        teacher_accuracy=expand(
            teacher_logits_file(ext="json"), pair=PAIRS, rho=RHOS, seed=SEEDS
        ),
    output:
        csv=f"{RESULTS}/table1.csv",
        markdown=f"{RESULTS}/table1.md",
        html=report(
            f"{RESULTS}/table1.html",
            caption="../report/table1.rst",
            category="Table I",
        ),
        latex=f"{RESULTS}/table1.tex",
    log:
        log_path("table"),
    benchmark:
        benchmark_path("table")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(2000),
        runtime=grows(10),
    params:
        script=SCRIPTS / "make_table.py",
    shell:
        "python {params.script} --runs {input.runs} --teacher-accuracy {input.teacher_accuracy}"
        " --csv {output.csv} --markdown {output.markdown} --html {output.html} --latex {output.latex} > {log} 2>&1"
