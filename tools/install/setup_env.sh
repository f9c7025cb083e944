#!/usr/bin/env bash
# Create the project's virtual environment (if missing) and install the exact stack mmevf is
# built on: torch + torchvision, mmengine, mmcv with compiled ops, mmdet, mmseg,
# segment-anything, transformers, deepspeed, the demo's web server, test-only references and test
# tools, then mmevf itself (-e), and Chromium for the demo's browser test (install_browser.sh:
# Debian's packages, as root only). Safe to re-run: every step skips what is already there.
#
# Environment: VENV (default: <repo>/.venv; a relative path is taken from the cwd),
#   PYTHON_BOOTSTRAP (default: python3),
#   TORCH_SPEC (default: "torch==2.14.1 torchvision==0.29.1"; on a GPU machine give the
#   build matching your CUDA, e.g. TORCH_SPEC="torch==2.14.1 torchvision==0.29.1
#   --index-url https://download.pytorch.org/whl/cu130").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
# install_mmcv.sh runs python from inside the unpacked sdist: never hand it a relative path.
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV";; esac
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
PY="$VENV/bin/python"

say() { echo "[setup_env] $*"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

if [ ! -x "$PY" ]; then
    say "creating $VENV"
    "${PYTHON_BOOTSTRAP:-python3}" -m venv "$VENV"
fi

if ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    say "installing $TORCH_SPEC (several GB; takes a few minutes)"
    # shellcheck disable=SC2086
    pip_install $TORCH_SPEC
fi

# mmcv's build and mmengine's `pkg::` config lookup both need pkg_resources.
pip_install 'setuptools<82' wheel mmengine==0.10.7
PYTHON="$PY" bash "$ROOT/tools/install/install_mmcv.sh"

say "installing the OpenMMLab stack, SAM, transformers, the demo's server and test tools"
pip_install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/demo.txt" \
    -r "$ROOT/requirements/tests.txt"
if ! "$PY" -c 'import deepspeed' 2>/dev/null; then
    say "installing deepspeed (no CUDA ops are built; it runs ZeRO over gloo on CPU)"
    DS_BUILD_OPS=0 pip_install --no-build-isolation -r "$ROOT/requirements/optional.txt"
fi
# projects/EVF-SAM2: SAM-2 (sam2 1.1.0) without its CUDA extension; --no-deps keeps torch as is.
pip_install -r "$ROOT/requirements/projects.txt"
if ! "$PY" -c 'import sam2' 2>/dev/null; then
    say "installing sam2 1.1.0 for projects/EVF-SAM2 (no CUDA extension built)"
    SAM2_BUILD_CUDA=0 pip_install --no-deps sam2==1.1.0
fi
# deepspeed pulls a newer setuptools; mmengine 0.10.7 needs pkg_resources (setuptools<82).
pip_install 'setuptools<82'
# mmevf itself, editable. The install also puts mmevf's start-up hook in site-packages
# (mmevf-import-hook.pth, mmevf/compat/import_hook.py), which lets mmdet / mmpretrain import
# mmpretrain's models without `import mmevf` first. --use-pep517: pip builds the editable wheel
# with this venv's setuptools (without it, setuptools' deprecated `setup.py develop` runs a
# second pip that fetches the newest setuptools into an isolated build env, i.e. needs PyPI).
pip_install --no-build-isolation --no-deps --use-pep517 -e "$ROOT"

"$PY" - <<'EOF'
import torch, mmcv, mmengine, mmdet, mmseg, deepspeed, pkg_resources  # noqa: F401
import mmcv.ops, mmdet.datasets, mmdet.evaluation, mmseg.datasets  # noqa: F401
import fastapi, uvicorn  # noqa: F401 -- the demo's server (tools/demo/app.py)
# before `import mmevf`: mmevf's start-up hook (mmevf-import-hook.pth) fixes mmpretrain
import mmdet.models, mmpretrain.models  # noqa: F401
import mmevf
print(f'[setup_env] ready: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, '
      f'deepspeed {deepspeed.__version__}, mmevf {mmevf.__version__}')
EOF

# Chromium + ChromeDriver for the browser test of the demo (never fails the install).
bash "$ROOT/tools/install/install_browser.sh"
