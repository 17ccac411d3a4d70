# Entry points. Every target first brings the repo-root .venv up to date (a no-op when it is).
PY := .venv/bin/python
PYTEST_ARGS ?=

LINT_PATHS := silc_seg tools configs tests

.PHONY: env demo test test-fast lint format

env:
	bash tools/setup_env.sh

# Main job on the embedded demo data: generate it, pretrain a tiny SILC model,
# zero-shot segment the demo validation set and print mIoU.
demo: env
	bash tools/run_demo.sh

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: env
	@$(PY) -m pytest tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# Before a commit: everything but the slow and multi-process tests (under 2 minutes).
test-fast: env
	@$(PY) -m pytest tests -m "not slow and not dist" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# Style checks, as .pre-commit-config.yaml runs them (setup.cfg configures all three).
lint: env
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff --recursive $(LINT_PATHS)

# Rewrite the files as `make lint` wants them.
format: env
	$(PY) -m isort $(LINT_PATHS)
	$(PY) -m yapf --in-place --recursive $(LINT_PATHS)
