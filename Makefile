PY ?= python3

.PHONY: help test lint fmt fuzz bench docs editors-test vsix onnx-suite

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' Makefile | sed 's/:.*##/\t/'

test:  ## run the test suite (what CI runs, without the fresh venv)
	$(PY) -m pytest -q -p no:cacheprovider tests

lint:  ## ruff lint and format check
	ruff check lang lsp tests tools examples bench
	ruff format --check lang lsp tests tools examples bench

FUZZ_SEED ?= 1000
FUZZ_GRAPHS ?= 2000
fuzz:  ## long fuzz runs (CI runs a fixed sample); FUZZ_SEED=S FUZZ_GRAPHS=N for others
	MDL_FUZZ_EXAMPLES=5000 $(PY) -m pytest -q -p no:cacheprovider tests -m fuzz
	$(PY) tools/fuzz_native.py --seed $(FUZZ_SEED) --count $(FUZZ_GRAPHS) --save-dir fuzz-failures/

bench:  ## benchmarks (results in bench/)
	$(PY) bench/run.py

docs:  ## regenerate docs/errors from the package's explanations
	$(PY) tools/sync_error_docs.py

editors-test:  ## editor integrations: grammar, client, headless Neovim, vsix
	$(PY) -m pytest -q -p no:cacheprovider tests/editors

vsix:  ## build editors/vscode/mdl.vsix
	cd editors/vscode && npm ci --no-audit --no-fund && npm run package

onnx-suite:  ## the ONNX backend node suite through import, both backends -> docs/onnx-coverage.md
	$(PY) tools/onnx_suite.py
