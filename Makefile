# Two set-up commands on a fresh machine with Python 3 and make:
#   make demo   creates .venv, installs emkit, runs the worked examples
#   make test   installs the test extras into .venv and runs the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test install install-test bench clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[cli,plot,fast]"

demo: install
	$(VENV)/bin/emkit demo --plots demo-output

# torch==2.13.0 first: a CPU wheel of it is available locally, and it then satisfies the torch extra's range.
install-test: $(VENV)/bin/activate
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[test]"

# lint-imports checks the floors of docs/architecture.md (contracts in pyproject.toml)
test: install-test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --dist loadfile

# The documentation in docs/_build/html: the user guide's examples run first (docs/make_figures.py
# writes their output and pictures to docs/_generated), then Sphinx, warnings as errors.
.PHONY: docs
docs: $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[docs]"
	$(PY) docs/make_figures.py
	$(VENV)/bin/sphinx-build -b html -E -W --keep-going -q docs docs/_build/html
	@echo "documentation: docs/_build/html/index.html"

bench: install-test
	$(PIP) install --quiet -e ".[bench]"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache demo-output
