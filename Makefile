# Every target sets up .venv on first use (python3 -m venv + pip install -e .[dev]).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Jobs call plain `python`: the venv comes first on PATH, as if activated.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-slurm dry-run fidelity questions lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## demo: run the embedded study end to end (results/embedded/)
demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local

## test: run the test suite
test: $(STAMP)
	$(BIN)/pytest

## test-slurm: the SLURM test on a one-node SLURM cluster started here (needs root or sudo)
test-slurm: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,slurm]"
	.ci/slurm/start-cluster
	SUBTASK_DISTILL_SLURM=1 $(BIN)/pytest -m slurm; status=$$?; .ci/slurm/stop-cluster; exit $$status

## dry-run: list the jobs the study would run
dry-run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local -n

## fidelity: Table I of the embedded study under both digit looks and both SubDistill scalings (docs/fidelity.md)
FIDELITY_VARIANTS := opaque_standardise opaque_centre strokes_standardise strokes_centre
fidelity: $(STAMP)
	for variant in $(FIDELITY_VARIANTS); do \
		$(BIN)/snakemake table --profile profiles/local --configfile config.yaml configs/fidelity/$$variant.yaml || exit 1; \
	done
	for variant in $(FIDELITY_VARIANTS); do echo "== $$variant"; cat results/fidelity_$$variant/table1.md; done

## questions: the studies of the paper's open questions, each an overlay of config.yaml (docs/questions.md)
QUESTIONS := artifact_watermark artifact_jpeg selection biased_teacher layers
questions: $(STAMP)
	for question in $(QUESTIONS); do \
		$(BIN)/snakemake --profile profiles/local --configfile config.yaml configs/questions/$$question.yaml || exit 1; \
	done
	for question in $(QUESTIONS); do echo "== $$question"; cat results/q_$$question/table1.md; done
	$(BIN)/python scripts/compare_studies.py --out results/questions.png \
		--panel "1. natural artifacts (class 0 in training)" "digit=results/q_selection/table1.csv#oracle" \
			"watermark=results/q_artifact_watermark/table1.csv" "JPEG q5=results/q_artifact_jpeg/table1.csv" \
		--panel "2. selection rule" "oracle=results/q_selection/table1.csv#oracle" \
			"spurious=results/q_selection/table1.csv#spurious" \
		--panel "3. the teacher" "clean=results/q_selection/table1.csv#oracle" \
			"biased=results/q_biased_teacher/table1.csv" \
		--panel "4. aligned layers" "first=results/q_layers/table1.csv@L1" \
			"first two=results/q_layers/table1.csv@L12" "all four=results/q_layers/table1.csv"

## lint: Snakemake's linter, snakefmt's check and ruff (pyflakes, import order)
lint: $(STAMP)
	$(BIN)/ruff check src scripts benchmarks tests
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/

format: $(STAMP)
	$(BIN)/snakefmt Snakefile rules/

clean:
	rm -rf results/embedded .snakemake
