# HES Core — two commands: `make run` (install, migrate, create admin, start with a demo fleet)
# and `make test` (install, run the whole test suite).
#
# Dependencies: requirements.txt (runtime) and requirements-dev.txt (tests, tools) pin every package the code
# imports directly; requirements.lock and requirements-dev.lock pin everything installed, with hashes, and are
# what `make` installs from. After adding or changing a pin, run `make lock` and commit the four files
# (existing pins are kept; `make lock-upgrade` moves every transitive package to its newest release).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
ASSETS := app/static/vendor/.vendored

.PHONY: run test bench lint install assets clean lock lock-upgrade

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): requirements.lock | $(PY)
	$(PIP) install -q --require-hashes -r requirements.lock
	touch $@

$(DEV_STAMP): requirements.lock requirements-dev.lock | $(PY)
	$(PIP) install -q --require-hashes -r requirements-dev.lock
	touch $(STAMP) $@

PIP_TOOLS := pip-tools==7.6.2
COMPILE = $(VENV)/bin/pip-compile -q --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links

lock: | $(PY)
	$(PIP) install -q $(PIP_TOOLS)
	$(COMPILE) $(UPGRADE) -o requirements.lock requirements.txt
	$(COMPILE) $(UPGRADE) -c requirements.lock -o requirements-dev.lock requirements-dev.txt

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

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
