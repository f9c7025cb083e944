# `make test` and `make demo` create .venv and install what is missing, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-runs the (idempotent) installer whenever what it installs changes.
ENV_STAMP := $(VENV)/.mmevf-env
ENV_INPUTS := tools/install/setup_env.sh tools/install/install_mmcv.sh \
	tools/install/install_browser.sh setup.py requirements/runtime.txt requirements/optional.txt \
	requirements/demo.txt requirements/projects.txt requirements/tests.txt \
	mmevf/compat/import_hook.py

.PHONY: env test demo clean-env

env: $(ENV_STAMP)

$(ENV_STAMP): $(ENV_INPUTS)
	VENV=$(VENV) bash tools/install/setup_env.sh
	touch $@

# Two worker processes with one thread each keep a 2-core machine busy without
# oversubscribing it; a module's tests stay on one worker (its fixtures are built once).
TEST_WORKERS ?= 2
TEST_THREADS ?= 1

test: $(ENV_STAMP)
	OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20 \
		tests projects

demo: $(ENV_STAMP)
	PYTHON=$(PY) bash tools/run_demo.sh

clean-env:
	rm -rf $(VENV)
