# Analysis artifacts, separate from training so they rerun without retraining:
# penultimate test features and occlusion relevance of every teacher and of the students at
# lambda* (the runs Table I reports; the figures and the relevance table read no others).
# Every model is scored on the same images: the test split of the largest rho.


rule analyse_teacher:
    input:
        **relevance_base(),
        checkpoint=teacher_checkpoint,
        splits=splits_file(SCORED_RHO, SEEDS[0]),
    output:
        teacher_analysis_file(),
    log:
        log_path("analyse_teacher", "{pair}"),
    benchmark:
        benchmark_path("analyse_teacher", "{pair}")
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(0.05),
    params:
        config=lambda w: job_config("data", "analysis", "runtime", pair=w.pair),
        base=base_arg,
        scored_rho=SCORED_RHO,
        seed=SEEDS[0],
        script=SCRIPTS / "analyse.py",
    shell:
        "python {params.script} --config {params.config:q} --threads {threads} --pair {wildcards.pair}"
        " --role teacher --scored-rho {params.scored_rho} --seed {params.seed} --checkpoint {input.checkpoint}"
        " --splits {input.splits} {params.base} --out {output} > {log} 2>&1"


rule analyse_student:
    input:
        **relevance_base(),
        checkpoint=f"{RESULTS}/runs/{{pair}}/{{method}}/rho{{rho}}/lam{{lam}}/seed{{seed}}/student.pt",
        splits=splits_file(SCORED_RHO, SEEDS[0]),
    output:
        f"{RESULTS}/runs/{{pair}}/{{method}}/rho{{rho}}/lam{{lam}}/seed{{seed}}/analysis.npz",
    log:
        log_path("analyse_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}"),
    benchmark:
        benchmark_path(
            "analyse_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}"
        )
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(0.05),
    params:
        config=lambda w: job_config("data", "analysis", "runtime", pair=w.pair),
        base=base_arg,
        scored_rho=SCORED_RHO,
        seed=SEEDS[0],
        script=SCRIPTS / "analyse.py",
    shell:
        "python {params.script} --config {params.config:q} --threads {threads} --pair {wildcards.pair}"
        " --role student --rho {wildcards.rho} --scored-rho {params.scored_rho} --seed {params.seed}"
        " --checkpoint {input.checkpoint} --splits {input.splits} {params.base} --out {output} > {log} 2>&1"


rule relevance_table:
    input:
        teachers=expand(teacher_analysis_file(), pair=PAIRS),
        analyses=lambda w: [
            f"{RESULTS}/{run.path}/analysis.npz" for run in chosen_runs()
        ],
    output:
        report(
            f"{RESULTS}/relevance_correlation.csv",
            caption="../report/relevance_table.rst",
            category="Relevance",
        ),
    log:
        log_path("relevance_table"),
    benchmark:
        benchmark_path("relevance_table")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(3000),
        runtime=grows(10),
    params:
        runs=lambda w: [f"{RESULTS}/{run.path}" for run in chosen_runs()],
        script=SCRIPTS / "relevance_table.py",
    shell:
        "python {params.script} --teacher-analysis {input.teachers}"
        " --runs {params.runs} --out {output} > {log} 2>&1"
