# HES Core — two commands: `make run` (install, migrate, create admin, start with a demo fleet)
# and `make test` (install, run the whole test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
ASSETS := app/static/vendor/.vendored

.PHONY: run test bench lint install assets clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): requirements.txt | $(PY)
	$(PIP) install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -q -r requirements-dev.txt
	touch $(STAMP) $@

$(ASSETS): package.json package-lock.json scripts/vendor_assets.py | $(PY)
	$(PY) scripts/vendor_assets.py

install: $(STAMP) $(ASSETS)

assets: $(ASSETS)

run: $(STAMP) $(ASSETS)
	$(PY) run.py

test: $(DEV_STAMP) $(ASSETS)
	$(PY) -m pytest

bench: $(DEV_STAMP) $(ASSETS)
	$(PY) bench/run_all.py

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules app/static/vendor
