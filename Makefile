# Development tasks. `make install` sets up everything in .venv; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that this project develops and tests against. Override for another
# build, e.g. `make install TORCH="torch==2.14.1"`. The package itself accepts any torch>=2.1.
TORCH ?= torch==2.13.0

.PHONY: install test lint demo bench calibrate pictures clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints/dev.txt -e ".[dev,plot]"
	$(BIN)/pinncheck --version

test:
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check pinncheck tests bench samples
	$(BIN)/ruff format --check pinncheck tests bench samples README.md
	$(BIN)/mypy

demo:
	$(BIN)/pinncheck check "x1**2*sin(x2)" -d x1=0:1 -d x2=0:1

bench:
	$(BIN)/python -m bench --rounds 3

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

calibrate:
	$(BIN)/python -m bench.calibrate --markdown docs/calibration.md

# The pictures of docs/pictures.md (fixed seeds; each PNG under 200 kB).
pictures:
	$(BIN)/python -m bench.pictures docs/pictures
