# Two commands do all the setup on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: install run test test-latest lock lint bench clean system-deps bench-data

# The lock holds every version the suite was tested with; pyproject.toml keeps the ranges users install from.
$(STAMP): pyproject.toml constraints.txt $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## refresh the lock to the newest versions the ranges in pyproject.toml allow (then run make test)
lock:
	test -x $(BIN)/uv || { test -x $(BIN)/python || $(PY) -m venv $(VENV); $(BIN)/pip install -q uv; }
	$(BIN)/uv pip compile pyproject.toml --extra dev -c constraints.txt --upgrade --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" -o $(LOCK)

## the suite on the newest versions the ranges allow, in a separate venv (.venv-latest), without the lock
test-latest: system-deps
	test -x .venv-latest/bin/python || $(PY) -m venv .venv-latest
	.venv-latest/bin/pip install -q --upgrade --upgrade-strategy eager -c constraints.txt -e ".[dev]"
	.venv-latest/bin/python -m pytest -q tests

## run the main job on the bundled defaults (text recipe, packaged all-MiniLM-L6-v2, sample pairs)
run: install
	$(BIN)/contrastkit run text

## Debian packages the tests need: the browser for the demo's end-to-end test
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: install system-deps
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check recipes plugins demo tests bench

## build leftovers only: outputs/ holds your trained models (the demo and push read them), so it stays
clean:
	rm -rf build dist *.egg-info .venv-latest

## real datasets for the benchmarks: KJV + World English Bible and WordNet (bench/text_*.py),
## Fashion-MNIST (bench/image_quality.py)
bench-data:
	@if ! command -v bible >/dev/null || ! command -v diatheke >/dev/null || [ ! -f /usr/share/wordnet/data.noun ] \
		|| [ ! -f /usr/share/sword/mods.d/engWEB2015eb.conf ] || [ ! -d /usr/share/datasets/fashion-mnist ] \
		|| [ ! -f /usr/share/man/man3/malloc.3.gz ] || [ ! -f /usr/share/dictd/foldoc.dict.dz ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bible-kjv bible-kjv-text \
			diatheke sword-text-web wordnet-base manpages manpages-dev dict-foldoc dataset-fashion-mnist >/dev/null; \
	fi
