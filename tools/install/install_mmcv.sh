#!/usr/bin/env bash
# Install mmcv 2.1.0 *with compiled ops* into the active Python environment.
#
# There is no mmcv wheel for torch >= 2.5, so we build one from the PyPI sdist against the
# installed torch and cache it per machine. Order of preference:
#   1. mmcv 2.1.0 with working ops is already installed          -> nothing to do
#   2. a cached wheel for this (mmcv, torch, python, cpu|cuda)     -> install it
#   3. the prebuilt wheel in ../shared/wheels, if its SHA-256 and its
#      torch/python match (CPU ops, torch 2.14.1, CPython 3.11)    -> cache + install it
#   4. build from the sdist (10-30 min on 2 cores)                -> cache + install it
# The build needs two fixes for current toolchains:
#   - mmcv's setup.py imports pkg_resources: setuptools<82 and --no-build-isolation;
#   - torch >= 2.10 headers need C++20: mmcv's -std=c++14 / -std=c++17 flags are raised.
# On a machine with CUDA (torch.cuda.is_available() or FORCE_CUDA=1) the same build compiles
# CUDA ops as well.
#
# Usage: install_mmcv.sh [--dry-run] [--from-source]
#   --dry-run      (or MMCV_DRY_RUN=1) install and compile nothing: on the from-source path the
#                  sdist is still downloaded, unpacked and patched, then the build command and
#                  its cwd are printed and the patched source is left in place.
#   --from-source  (or MMCV_FROM_SOURCE=1) build even if mmcv works or a wheel is available.
#
# Environment: PYTHON (default: python; a relative path is taken from the caller's cwd),
#              MMEVF_CACHE (default: ~/.cache/mmevf),
#              MMEVF_SHARED_WHEELS (default: <repo>/../shared/wheels), MAX_JOBS.
set -euo pipefail

MMCV_VERSION=2.1.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHARED_WHEELS=${MMEVF_SHARED_WHEELS:-$ROOT/../shared/wheels}
DRY_RUN=${MMCV_DRY_RUN:-0}
FROM_SOURCE=${MMCV_FROM_SOURCE:-0}

say() { echo "[install_mmcv] $*"; }
die() { say "ERROR: $*" >&2; exit 1; }

for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1;;
        --from-source) FROM_SOURCE=1;;
        -h|--help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0;;
        *) die "unknown argument '$arg' (see --help)";;
    esac
done
CACHE_ROOT=${MMEVF_CACHE:-${HOME:?HOME is not set: set MMEVF_CACHE}/.cache/mmevf}

# The build runs python after `cd` into the unpacked sdist, so PYTHON must not depend on the
# cwd. Symlinks are not resolved: a venv's bin/python must stay the venv's.
resolve_python() {
    local py=$1 dir
    case "$py" in
        */*)
            dir=$(cd "$(dirname -- "$py")" 2>/dev/null && pwd) \
                || die "PYTHON=$py: directory $(dirname -- "$py") does not exist (cwd: $PWD)"
            py="$dir/$(basename -- "$py")";;
        *)
            py=$(command -v -- "$py") || die "PYTHON=$1: no such command on PATH";;
    esac
    [ -f "$py" ] && [ -x "$py" ] || die "PYTHON=$1: $py does not exist or is not executable"
    echo "$py"
}
PYTHON=$(resolve_python "${PYTHON:-python}")
say "python: $PYTHON"

quoted() { local s; s=$(printf '%q ' "$@"); echo "${s% }"; }

# Dry run: print what would change the environment instead of doing it.
run_or_show() {
    if [ "$DRY_RUN" = 1 ]; then
        say "dry run: would run: $(quoted "$@")"
    else
        "$@"
    fi
}

# Condense the compiler output: ninja's "[k/n] c++ ..." lines become "compiling [k/n]";
# compiler errors are shown in full.
show_progress() {
    local line trimmed
    while IFS= read -r line; do
        trimmed="${line#"${line%%[![:space:]]*}"}"
        case "$trimmed" in
            "["[0-9]*"/"[0-9]*"]"*) say "compiling ${trimmed%% *}";;
            *"error:"*|*"Error:"*|"ERROR"*) say "$trimmed";;
        esac
    done
}

mmcv_ops_work() {
    "$PYTHON" - <<'EOF' >/dev/null 2>&1
import mmcv, torch
from mmcv.ops import nms
assert mmcv.__version__ == '2.1.0'
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)[1]
assert keep.tolist() == [0, 2], keep
EOF
}

if [ "$FROM_SOURCE" != 1 ] && mmcv_ops_work; then
    say "mmcv $MMCV_VERSION with compiled ops is already installed."
    exit 0
fi

# An assignment, not `read < <(...)`, so that a python without torch stops the script here.
TORCH_INFO=$("$PYTHON" - <<'EOF'
import os, sys, torch
cuda = os.environ.get('FORCE_CUDA') == '1' or torch.cuda.is_available()
print(torch.__version__, f'cp{sys.version_info.major}{sys.version_info.minor}', 'cuda' if cuda else 'cpu')
EOF
) || die "$PYTHON cannot import torch: install torch first"
read -r TORCH_VERSION PY_TAG CUDA_OPS <<<"$TORCH_INFO"
TORCH_BASE=${TORCH_VERSION%%+*}
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}_${CUDA_OPS}"
CACHE_DIR="$CACHE_ROOT/wheels/$KEY"
mkdir -p "$CACHE_DIR"
say "torch $TORCH_VERSION, $PY_TAG, ops: $CUDA_OPS; wheel cache: $CACHE_DIR"

cached_wheel() { ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1; }

install_wheel() {
    if [ "$DRY_RUN" = 1 ]; then
        say "dry run: would install $1"
        return
    fi
    say "installing $1"
    # opencv-python 5 is newer than anything mmcv 2.1 was released against.
    "$PYTHON" -m pip install "$1" 'opencv-python<5'
    if ! mmcv_ops_work; then
        say "ERROR: $1 installed but mmcv.ops does not work; remove it and re-run." >&2
        exit 1
    fi
    say "mmcv $MMCV_VERSION with compiled ops is installed."
}

if [ "$FROM_SOURCE" = 1 ]; then
    say "from-source build requested: ignoring installed, cached and shared wheels."
elif [ -n "$(cached_wheel)" ]; then
    install_wheel "$(cached_wheel)"
    exit 0
fi

SHARED_WHEEL="$SHARED_WHEELS/mmcv-${MMCV_VERSION}-cp311-cp311-linux_x86_64.whl"
if [ "$FROM_SOURCE" != 1 ] && [ -f "$SHARED_WHEEL" ] \
    && [ -f "$SHARED_WHEELS/SHA256SUMS" ]; then
    if [ "$TORCH_BASE" = 2.14.1 ] && [ "$PY_TAG" = cp311 ] && [ "$CUDA_OPS" = cpu ] \
        && [ "$(uname -m)" = x86_64 ]; then
        say "checking the SHA-256 of $SHARED_WHEEL"
        if (cd "$SHARED_WHEELS" && grep " $(basename "$SHARED_WHEEL")\$" SHA256SUMS | sha256sum --check --status); then
            if [ "$DRY_RUN" = 1 ]; then
                install_wheel "$SHARED_WHEEL"
            else
                cp "$SHARED_WHEEL" "$CACHE_DIR/"
                install_wheel "$(cached_wheel)"
            fi
            exit 0
        fi
        say "SHA-256 mismatch: ignoring the shared wheel."
    else
        say "the shared wheel was built for torch 2.14.1 / cp311 / cpu / x86_64: not this machine."
    fi
fi

say "================================================================"
say " Building mmcv $MMCV_VERSION from source against torch $TORCH_VERSION."
say " This compiles all $CUDA_OPS ops and takes 10-30 minutes on 2 cores."
say " It is done once per machine; the wheel is cached in $CACHE_DIR."
say "================================================================"
BUILD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")
# a dry run leaves the patched source for inspection
[ "$DRY_RUN" = 1 ] || trap 'rm -rf "$BUILD_DIR"' EXIT

# mmcv's setup.py imports pkg_resources and torch: build without isolation, in this env.
run_or_show "$PYTHON" -m pip install 'setuptools<82' wheel ninja
"$PYTHON" -m pip download "mmcv==$MMCV_VERSION" --no-deps --no-binary :all: -d "$BUILD_DIR" \
    || die "could not download the mmcv $MMCV_VERSION sdist from the package index"
tar -xzf "$BUILD_DIR"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD_DIR"
SRC="$BUILD_DIR/mmcv-$MMCV_VERSION"
say "raising -std=c++14 / -std=c++17 to -std=c++20 in $SRC/setup.py"
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
grep -q 'c++20' "$SRC/setup.py" || die "no -std flag found to patch in setup.py"

export MMCV_WITH_OPS=1
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
if [ "$CUDA_OPS" = cuda ]; then export FORCE_CUDA=1; fi
BUILD_CMD=("$PYTHON" -m pip wheel -v --no-build-isolation --no-deps -w "$CACHE_DIR" .)
# The build's python runs from inside the source tree: check that it starts there.
(cd "$SRC" && "${BUILD_CMD[0]}" -c 'import torch') \
    || die "$PYTHON does not run (or cannot import torch) from inside $SRC"
if [ "$DRY_RUN" = 1 ]; then
    say "dry run: build cwd: $SRC"
    say "dry run: build command: $(quoted "${BUILD_CMD[@]}")"
    say "dry run: build env: MMCV_WITH_OPS=1 MAX_JOBS=$MAX_JOBS FORCE_CUDA=${FORCE_CUDA:-}"
    say "dry run: stopping before the compiler; the patched source is left in $SRC"
    exit 0
fi
start=$(date +%s)
LOG="$CACHE_DIR/build.log"
say "full compiler output: $LOG"
(cd "$SRC" && "${BUILD_CMD[@]}" 2>&1 | tee "$LOG" | show_progress)
say "build finished in $(( ($(date +%s) - start) / 60 )) min"
[ -n "$(cached_wheel)" ] || { say "ERROR: the build produced no wheel" >&2; exit 1; }
install_wheel "$(cached_wheel)"
