# Fresh machine: `make demo` or `make test` does all set-up (the first mmcv build takes ~30 min).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo demo-cls benchmark clean

env:
	@VENV=$(VENV) bash scripts/setup_env.sh

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	@PY=$(PY) bash scripts/demo.sh

demo-cls: env
	@PY=$(PY) bash scripts/demo_cls.sh

clean:
	rm -rf work_dirs .pytest_cache
