# Figures and the HTML report. These rules alone read the config's plots section,
# so restyling a figure reruns them and nothing upstream.


rule plot_figures:
    input:
        teacher=teacher_analysis_file(),
        analyses=lambda w: [
            f"{RESULTS}/{run.path}/analysis.npz" for run in chosen_runs(w.pair)
        ],
    output:
        tsne=report(
            figure_file("{pair}", "tsne"),
            caption="../report/tsne.rst",
            category="Figures",
        ),
        heatmaps=report(
            figure_file("{pair}", "relevance_maps"),
            caption="../report/relevance_maps.rst",
            category="Figures",
        ),
        scatter=report(
            figure_file("{pair}", "relevance_scatter"),
            caption="../report/relevance_scatter.rst",
            category="Figures",
        ),
    log:
        log_path("plot_figures", "{pair}"),
    benchmark:
        benchmark_path("plot_figures", "{pair}")
    conda:
        "../envs/study.yaml"
    # t-SNE, the slow part, runs on threads; it ends the study alone, like the teacher.
    threads: config["runtime"]["teacher_threads"]
    resources:
        mem_mb=grows(3000),
        runtime=grows(20),
    params:
        settings=json.dumps(config["plots"]),
        runs=lambda w: [f"{RESULTS}/{run.path}" for run in chosen_runs(w.pair)],
        script=SCRIPTS / "plot_figures.py",
    shell:
        "python {params.script} --pair {wildcards.pair}"
        " --teacher-analysis {input.teacher} --runs {params.runs} --settings {params.settings:q}"
        " --tsne {output.tsne} --heatmaps {output.heatmaps} --scatter {output.scatter}"
        " --threads {threads} > {log} 2>&1"


rule build_report:
    input:
        **({"preview": rules.preview_data.output} if DATA_KIND == "embedded" else {}),
        table=rules.table.output.html,
        teachers=[teacher_file(pair, metrics=True) for pair in PAIRS],
        figures=expand(
            figure_file("{pair}", "{kind}"),
            pair=PAIRS,
            kind=["tsne", "relevance_maps", "relevance_scatter"],
        ),
        relevance=rules.relevance_table.output,
    output:
        f"{RESULTS}/report.html",
    log:
        log_path("build_report"),
    benchmark:
        benchmark_path("build_report")
    conda:
        "../envs/study.yaml"
    threads: 1
    resources:
        mem_mb=grows(2000),
        runtime=grows(10),
    params:
        config=json.dumps(config),
        # The folder, not its files: the list grows as jobs run, and a changed list would retrigger the report.
        benchmarks=f"{RESULTS}/benchmarks",
        preview=lambda w, input: (
            f"--preview {input.preview}" if "preview" in input.keys() else ""
        ),
        script=SCRIPTS / "make_report.py",
    shell:
        "python {params.script} --config {params.config:q} --table-html {input.table}"
        " --teacher-metrics {input.teachers} {params.preview} --figures {input.figures}"
        " --relevance {input.relevance} --benchmarks-dir {params.benchmarks} --out {output} > {log} 2>&1"
