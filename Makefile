# `make test` and `make demo` create .venv and install what is missing, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
# Re-runs the (idempotent) installer whenever what it installs changes.
ENV_STAMP := $(VENV)/.mmevf-env
ENV_INPUTS := tools/install/setup_env.sh tools/install/install_mmcv.sh setup.py \
	requirements/runtime.txt requirements/optional.txt requirements/tests.txt

.PHONY: env test demo clean-env

env: $(ENV_STAMP)

$(ENV_STAMP): $(ENV_INPUTS)
	VENV=$(VENV) bash tools/install/setup_env.sh
	touch $@

test: $(ENV_STAMP)
	$(PY) -m pytest tests

demo: $(ENV_STAMP)
	@echo "make demo: the demo (train the tiny EVF-SAM on SynthRef, evaluate, draw overlays)" \
	      "is not built yet; it arrives with the training issue. The environment is ready in $(VENV)."
	@exit 1

clean-env:
	rm -rf $(VENV)
