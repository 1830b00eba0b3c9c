# The two commands of the README. Both create or refresh .venv first (again whenever a requirements file changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test report bench

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

# Executes hw6.ipynb in the quick profile (synthetic data unless HW6_DATA_ROOT is set); writes results/, plots/, report.pdf.
run: $(STAMP)
	HW6_PROFILE=$${HW6_PROFILE:-quick} $(PY) run_notebook.py
	$(PY) report.py --results $${HW6_OUT:-results} --readme README.md

test: $(STAMP)
	$(PY) -m pytest -q

report: $(STAMP)
	$(PY) report.py

bench: $(STAMP)
	$(PY) bench.py --quick --compile --precision-seeds 0 1 2 --json docs/bench-cpu.json
	$(PY) bench.py --render docs/bench-*.json --out docs/BENCHMARKS.md \
	  --runs $(wildcard results/*-full*/metrics.json results/recipe-best-seeds*/seeds.json)
