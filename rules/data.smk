# The data of the study. Embedded: synthesis, contamination at each (rho, seed) and a preview
# picture. ImageNet: one manifest per rho of which image carries which MNIST digit.


if DATA_KIND == "embedded":

    rule synthesize_data:
        output:
            teacher_set=f"{RESULTS}/data/teacher_set.npz",
            subtask_base=f"{RESULTS}/data/subtask_base.npz",
        log:
            log_path("synthesize_data"),
        benchmark:
            benchmark_path("synthesize_data")
        conda:
            "../envs/study.yaml"
        # Renders chunks of images on this many threads (the same images on any number).
        threads: config["runtime"]["teacher_threads"]
        resources:
            mem_mb=grows(4000),
            runtime=grows(20),
        params:
            config=job_config("data"),
            script=SCRIPTS / "synthesize_data.py",
        shell:
            "python {params.script} --config {params.config:q} --threads {threads}"
            " --teacher-set {output.teacher_set} --subtask-base {output.subtask_base} > {log} 2>&1"

    rule contaminate:
        input:
            base=rules.synthesize_data.output.subtask_base,
        output:
            splits_file(),
        log:
            log_path("contaminate", "rho{rho}_seed{seed}"),
        benchmark:
            benchmark_path("contaminate", "rho{rho}_seed{seed}")
        conda:
            "../envs/study.yaml"
        threads: 1
        resources:
            mem_mb=grows(2000),
            runtime=grows(10),
        params:
            config=job_config("data"),
            script=SCRIPTS / "contaminate.py",
        shell:
            "python {params.script} --config {params.config:q} --threads {threads}"
            " --base {input.base} --rho {wildcards.rho} --seed {wildcards.seed} --out {output} > {log} 2>&1"

    rule preview_data:
        input:
            expand(splits_file(seed=SEEDS[0]), rho=RHOS),
        output:
            report(
                f"{RESULTS}/data/preview.png",
                caption="../report/preview.rst",
                category="Data",
            ),
        log:
            log_path("preview_data"),
        benchmark:
            benchmark_path("preview_data")
        conda:
            "../envs/study.yaml"
        threads: 1
        resources:
            mem_mb=grows(2000),
            runtime=grows(10),
        params:
            config=job_config("data"),
            rhos=RHOS,
            script=SCRIPTS / "preview_data.py",
        shell:
            "python {params.script} --config {params.config:q} --splits {input} --rhos {params.rhos}"
            " --out {output} > {log} 2>&1"


if DATA_KIND == "imagenet":

    rule build_manifest:
        output:
            splits_file(),
        log:
            log_path("build_manifest", "rho{rho}"),
        benchmark:
            benchmark_path("build_manifest", "rho{rho}")
        conda:
            "../envs/study.yaml"
        threads: 1
        resources:
            mem_mb=grows(4000),
            runtime=grows(60),
        params:
            config=job_config("data"),
            seeds=SEEDS,
            script=SCRIPTS / "build_manifest.py",
        shell:
            "python {params.script} --config {params.config:q} --rho {wildcards.rho}"
            " --seeds {params.seeds} --out {output} > {log} 2>&1"
