# SubDistill's teacher subspaces: fitted once per (pair, kind, rho, seed), shared by every lambda.


rule fit_subspace:
    input:
        teacher=teacher_checkpoint,
        splits=splits_file(),
    output:
        subspace=subspace_file(),
        summary=subspace_file(ext="json"),
    log:
        log_path("fit_subspace", "{pair}/{kind}/rho{rho}_seed{seed}"),
    benchmark:
        benchmark_path("fit_subspace", "{pair}/{kind}/rho{rho}_seed{seed}")
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(0.1),
    params:
        config=lambda w: job_config("data", "subspace", "runtime", pair=w.pair),
        script=SCRIPTS / "fit_subspace.py",
    shell:
        "python {params.script} --config {params.config:q} --threads {threads} --pair {wildcards.pair}"
        " --kind {wildcards.kind} --seed {wildcards.seed} --teacher {input.teacher} --splits {input.splits}"
        " --out {output.subspace} --summary {output.summary} > {log} 2>&1"
