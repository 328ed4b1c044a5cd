# Fresh machine: `make demo` or `make test` does all set-up (the first mmcv build takes ~30 min).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo demo-cls demo-m2f bench-real clean

env:
	@VENV=$(VENV) bash scripts/setup_env.sh

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: env
	@PY=$(PY) bash scripts/demo.sh

demo-cls: env
	@PY=$(PY) bash scripts/demo_cls.sh

demo-m2f: env
	@PY=$(PY) bash scripts/demo_m2f.sh

# Real weights, real images (tools/analysis_tools/real_transfer.py): ~100 min on 2 cores.
bench-real: env
	$(PY) tools/analysis_tools/real_transfer.py $(BENCH_ARGS)

clean:
	rm -rf work_dirs .pytest_cache
