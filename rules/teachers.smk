# The teacher of each pair (trained here, or imported from pretrained weights), its subtask logits
# on every (rho, seed) split, and the downloads a cluster's compute nodes may not be able to make.


rule import_teacher:
    output:
        checkpoint=f"{RESULTS}/teachers/{{pair}}/pretrained.pt",
        metrics=f"{RESULTS}/teachers/{{pair}}/pretrained.json",
    log:
        log_path("import_teacher", "{pair}"),
    benchmark:
        benchmark_path("import_teacher", "{pair}")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(8000),
        runtime=grows(20),
    params:
        config=lambda w: job_config("data", "runtime", pair=w.pair),
        script=SCRIPTS / "import_teacher.py",
    shell:
        "python {params.script} --config {params.config:q} --pair {wildcards.pair}"
        " --out {output.checkpoint} --metrics {output.metrics} > {log} 2>&1"


if DATA_KIND == "embedded":

    rule train_teacher:
        input:
            teacher_set=rules.synthesize_data.output.teacher_set,
            subtask_base=rules.synthesize_data.output.subtask_base,
        output:
            checkpoint=f"{RESULTS}/teachers/{{pair}}/teacher.pt",
            metrics=f"{RESULTS}/teachers/{{pair}}/teacher_metrics.json",
        log:
            log_path("train_teacher", "{pair}"),
        benchmark:
            benchmark_path("train_teacher", "{pair}")
        conda:
            "../envs/study.yaml"
        threads: config["runtime"]["teacher_threads"]
        resources:
            gpu=gpus,
            mem_mb=grows(6000),
            runtime=grows(60),
        params:
            config=lambda w: job_config(
                "data", "teacher_training", "runtime", pair=w.pair
            ),
            script=SCRIPTS / "train_teacher.py",
        shell:
            "python {params.script} --config {params.config:q} --threads {threads} --pair {wildcards.pair}"
            " --teacher-set {input.teacher_set} --subtask-base {input.subtask_base}"
            " --checkpoint {output.checkpoint} --metrics {output.metrics} > {log} 2>&1"


rule teacher_logits:
    input:
        teacher=teacher_checkpoint,
        splits=splits_file(),
    output:
        logits=teacher_logits_file(),
        accuracy=teacher_logits_file(ext="json"),
    log:
        log_path("teacher_logits", "{pair}_rho{rho}_seed{seed}"),
    benchmark:
        benchmark_path("teacher_logits", "{pair}_rho{rho}_seed{seed}")
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(0.05),
    params:
        config=lambda w: job_config("data", "runtime", pair=w.pair),
        script=SCRIPTS / "teacher_logits.py",
    shell:
        "python {params.script} --config {params.config:q} --threads {threads} --pair {wildcards.pair}"
        " --rho {wildcards.rho} --seed {wildcards.seed} --teacher {input.teacher} --splits {input.splits}"
        " --out {output.logits} --accuracy {output.accuracy} > {log} 2>&1"


rule prefetch_downloads:
    output:
        f"{RESULTS}/prefetch.json",
    log:
        log_path("prefetch"),
    benchmark:
        benchmark_path("prefetch")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(4000),
        runtime=grows(60),
    params:
        config=json.dumps(config),
        script=SCRIPTS / "prefetch.py",
    shell:
        "python {params.script} --config {params.config:q} --out {output} > {log} 2>&1"
