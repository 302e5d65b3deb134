# `make test` is the project's one test command (README, .ci/run).
PY ?= python

.PHONY: test lint typecheck unit crd

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

test: lint typecheck
	$(PY) -m pytest -q

crd:
	mme-operator crd > crds/modelendpoints.yaml
