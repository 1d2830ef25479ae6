# Student training: one job per (pair, method with its layer subset, rho, lambda, seed).


rule train_student:
    input:
        unpack(student_inputs),
    output:
        metrics=f"{RESULTS}/runs/{{pair}}/{{method}}/rho{{rho}}/lam{{lam}}/seed{{seed}}/metrics.json",
        checkpoint=f"{RESULTS}/runs/{{pair}}/{{method}}/rho{{rho}}/lam{{lam}}/seed{{seed}}/student.pt",
    log:
        log_path("train_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}"),
    benchmark:
        benchmark_path("train_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}")
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(1.0),
    params:
        config=lambda w: job_config(
            "data", "training", "runtime", "selection", pair=w.pair, method=w.method
        ),
        script=SCRIPTS / "train_student.py",
        out_dir=lambda w, output: Path(output.metrics).parent,
        # Outside the declared outputs, so Snakemake keeps it when a killed job is rerun.
        resume=lambda w: f"{RESULTS}/resume/{w.pair}/{w.method}/rho{w.rho}/lam{w.lam}/seed{w.seed}.pt",
        # Layer targets shared by the lambdas of a (pair, method, rho, seed), keyed by their inputs.
        cache=(
            f"--cache-dir {RESULTS}/cache/teacher_targets"
            if config["training"]["teacher_cache"]
            else ""
        ),
        optional=optional_student_args,
    shell:
        "python {params.script} --config {params.config:q} --threads {threads}"
        " --pair {wildcards.pair} --method {wildcards.method} --rho {wildcards.rho}"
        " --lam {wildcards.lam} --seed {wildcards.seed} --splits {input.splits}"
        " --teacher-logits {input.teacher_logits} {params.optional} {params.cache}"
        " --resume-file {params.resume} --out-dir {params.out_dir} > {log} 2>&1"
