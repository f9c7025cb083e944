# `make test` and `make demo` create .venv and install what is missing, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-runs the (idempotent) installer whenever what it installs changes.
ENV_STAMP := $(VENV)/.mmevf-env
ENV_INPUTS := tools/install/setup_env.sh tools/install/install_mmcv.sh \
	tools/install/install_browser.sh setup.py requirements/runtime.txt requirements/optional.txt \
	requirements/demo.txt requirements/projects.txt requirements/tests.txt

.PHONY: env test demo clean-env

env: $(ENV_STAMP)

$(ENV_STAMP): $(ENV_INPUTS)
	VENV=$(VENV) bash tools/install/setup_env.sh
	touch $@

test: $(ENV_STAMP)
	$(PY) -m pytest tests projects

demo: $(ENV_STAMP)
	PYTHON=$(PY) bash tools/run_demo.sh

clean-env:
	rm -rf $(VENV)
