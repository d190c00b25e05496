# Two commands do all the set-up on a fresh machine:
#   make example   install ridgeline in .venv and run an example search (SQLite store)
#   make test      install the test tools and run lint and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) -e '.[dev,keras]' 'torch==2.13.0'
	touch $@

$(VENV)/.bench: $(VENV)/.base
	$(PIP) -e '.[bench]'
	touch $@

$(VENV)/.load: $(VENV)/.base
	$(PIP) -e '.[postgres]'
	touch $@

$(VENV)/.cluster: $(VENV)/.base
	$(PIP) -e '.[dask]'
	touch $@

.PHONY: example test checks bench bench-load bench-cluster bench-multifidelity bench-search-quality
example: $(VENV)/.base
	$(PY) examples/runner.py --output-dir examples/output-$$(date +%Y%m%d-%H%M%S)

# The daemons the tests use (PostgreSQL, SLURM, Grid Engine) are started when not running, and
# those this run started are stopped at its end, also when it fails (scripts/with-daemons.sh).
test: $(VENV)/.dev
	bash scripts/with-daemons.sh $(MAKE) --no-print-directory checks

# Lint, types and the whole suite, with the daemons as they are.
checks: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/mypy
	KERAS_BACKEND=torch $(PY) -m pytest -n 2 -q

bench: $(VENV)/.bench
	$(PY) benchmarks/overhead.py

bench-load: $(VENV)/.load
	bash scripts/ensure-postgres.sh
	$(PY) benchmarks/load.py --markdown

bench-cluster: $(VENV)/.cluster
	bash scripts/ensure-slurm.sh
	bash scripts/ensure-sge.sh
	$(PY) benchmarks/cluster.py --markdown

bench-multifidelity: $(VENV)/.bench
	$(PY) benchmarks/multifidelity.py --jobs 2

bench-search-quality: $(VENV)/.bench
	$(PY) benchmarks/search_quality.py --jobs 2 --out benchmarks/recorded/search_quality.json.gz
