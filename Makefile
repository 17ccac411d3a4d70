# Entry points. Every target first brings the repo-root .venv up to date (a no-op when it is).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env demo test

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
