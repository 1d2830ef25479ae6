# Student training. A bank (training.bank) trains several students in one job: the same batches,
# one teacher pass per batch. lambdas: the students of one (pair, layer-wise method with its layer
# subset, rho, seed), one per lambda (train_bank), and output-only KD alone (train_student);
# methods: every student of a (pair, rho, seed) (train_wide_bank); none: one student per job.
# Either way each run gets its own folder, student.pt and metrics.json.


rule train_bank:
    input:
        unpack(student_inputs),
    output:
        metrics=bank_files("metrics.json"),
        checkpoint=bank_files("student.pt"),
    log:
        log_path("train_bank", "{pair}/{method}/rho{rho}_seed{seed}"),
    benchmark:
        benchmark_path("train_bank", "{pair}/{method}/rho{rho}_seed{seed}")
    wildcard_constraints:
        method=one_of(BANKED),
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        # At most the runs one after the other; less, as they share the data and the teacher.
        runtime=job_runtime(len(BANK_LAMBDAS)),
    params:
        config=lambda w: job_config(
            "data", "training", "runtime", "selection", pair=w.pair, method=w.method
        ),
        script=SCRIPTS / "train_student.py",
        lams=" ".join(BANK_LAMBDAS),
        out_dirs=lambda w, output: " ".join(
            str(Path(path).parent) for path in output.metrics
        ),
        # Outside the declared outputs, so Snakemake keeps it when a killed job is rerun.
        resume=lambda w: f"{RESULTS}/resume/{w.pair}/{w.method}/rho{w.rho}/seed{w.seed}.pt",
        optional=optional_student_args,
    shell:
        "python {params.script} --config {params.config:q} --threads {threads}"
        " --pair {wildcards.pair} --method {wildcards.method} --rho {wildcards.rho}"
        " --lam {params.lams} --seed {wildcards.seed} --splits {input.splits}"
        " --teacher-logits {input.teacher_logits} {params.optional}"
        " --resume-file {params.resume} --out-dir {params.out_dirs} > {log} 2>&1"


rule train_student:
    input:
        unpack(student_inputs),
    output:
        metrics=run_file("metrics.json"),
        checkpoint=run_file("student.pt"),
    log:
        log_path("train_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}"),
    benchmark:
        benchmark_path("train_student", "{pair}/{method}/rho{rho}_lam{lam}_seed{seed}")
    wildcard_constraints:
        method=one_of(SOLO),
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


rule train_wide_bank:
    input:
        unpack(wide_bank_inputs),
    output:
        metrics=wide_bank_files("metrics.json"),
        checkpoint=wide_bank_files("student.pt"),
    log:
        log_path("train_wide_bank", "{pair}/rho{rho}_seed{seed}"),
    benchmark:
        benchmark_path("train_wide_bank", "{pair}/rho{rho}_seed{seed}")
    wildcard_constraints:
        pair=one_of(WIDE_PAIRS),
    conda:
        "../envs/study.yaml"
    threads: config["runtime"]["student_threads"]
    resources:
        gpu=gpus,
        mem_mb=job_mem_mb,
        runtime=job_runtime(len(WIDE_BANK)),
    params:
        config=lambda w: job_config(
            "data", "training", "runtime", "selection", "methods", pair=w.pair
        ),
        script=SCRIPTS / "train_student.py",
        methods=" ".join(VARIANTS),
        lams=" ".join(BANK_LAMBDAS),
        out_dirs=lambda w, output: " ".join(
            str(Path(path).parent) for path in output.metrics
        ),
        resume=lambda w: f"{RESULTS}/resume/{w.pair}/rho{w.rho}/seed{w.seed}.pt",
        optional=optional_student_args,
    shell:
        "python {params.script} --config {params.config:q} --threads {threads}"
        " --pair {wildcards.pair} --method {params.methods} --rho {wildcards.rho}"
        " --lam {params.lams} --seed {wildcards.seed} --splits {input.splits}"
        " --teacher-logits {input.teacher_logits} {params.optional}"
        " --resume-file {params.resume} --out-dir {params.out_dirs} > {log} 2>&1"
