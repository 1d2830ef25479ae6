# Lambda selection on validation accuracy and Table I. A checkpoint: which runs get analysed
# (those at lambda*) is decided by its output.


checkpoint table:
    input:
        metrics=[f"{RESULTS}/{run.path}/metrics.json" for run in RUNS],
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
        "python {params.script} --metrics {input.metrics} --teacher-accuracy {input.teacher_accuracy}"
        " --csv {output.csv} --markdown {output.markdown} --html {output.html} --latex {output.latex} > {log} 2>&1"
