# The two commands of the README. Both create or refresh .venv first (again whenever a requirements file or
# pyproject.toml changes) and install this folder into it as the package hw6 (`pip install -e .`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test report publish bench full

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Executes hw6.ipynb in the quick profile (synthetic data unless HW6_DATA_ROOT is set) into its own folder,
# runs/<profile>-<data>/ (the executed notebook, results/, report.pdf, plots/); no tracked file changes.
run: $(STAMP)
	HW6_PROFILE=$${HW6_PROFILE:-quick} $(PY) tools/run_notebook.py

# The deliberate step that replaces the published answers (hw6.ipynb, results/, report.pdf, plots/, README block).
publish: $(STAMP)
	@test -n "$(RUN)" || { echo "error: give the run folder: make publish RUN=runs/<profile>-<data>"; exit 2; }
	$(PY) tools/publish.py $(RUN)

test: $(STAMP)
	$(PY) -m pytest -q

# Rebuilds the published report.pdf, plots/ and README block from results/ alone.
report: $(STAMP)
	$(PY) notebook/report.py --results results --pdf report.pdf --plots plots --readme README.md

bench: $(STAMP)
	$(PY) tools/bench.py --quick --precision-seeds 0 1 2 --json docs/bench-cpu.json
	$(PY) tools/bench.py --render docs/bench-*.json --out docs/BENCHMARKS.md \
	  --runs $(wildcard results/*-full*/metrics.json results/*-seeds-*/seeds.json results/dice-reading/*/seeds.json)

# The prepared GPU command (tools/full_run.py): the notebook at the assignment's settings, then the benchmark.
full: $(STAMP)
	$(PY) tools/full_run.py --out results-gpu
