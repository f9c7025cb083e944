"""The shell entry points: tools/install/install_mmcv.sh builds mmcv from source with a relative
PYTHON (dry run: download, unpack, patch, stop before the compiler; offline, from a local package
folder), and tools/dist_*.sh run the repository's .venv python when PYTHON is unset."""
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_MMCV = ROOT / 'tools' / 'install' / 'install_mmcv.sh'
VENV_PYTHON = ROOT / '.venv' / 'bin' / 'python'
# The part of mmcv 2.1.0's setup.py the build patches: its C++ standard flags (-std=c++14 for the
# ops, -std=c++17 where torch needs it), in a package setup.py can describe.
MMCV_SETUP_PY = """from setuptools import setup

extra_compile_args = {'cxx': ['-std=c++14'], 'nvcc': ['-std=c++14']}
if True:  # mmcv raises the standard for newer torch on some platforms
    extra_compile_args['cxx'] = ['-std=c++17']

setup(name='mmcv', version='2.1.0', py_modules=[])
"""


def isolated_env(tmp_path: Path, **extra) -> dict:
    """A machine without ../shared wheels, with an empty HOME and a private cache."""
    dirs = {name: tmp_path / name for name in ('home', 'shared', 'cache', 'tmp')}
    for path in dirs.values():
        path.mkdir()
    env = dict(os.environ, HOME=str(dirs['home']), MMEVF_SHARED_WHEELS=str(dirs['shared']),
               MMEVF_CACHE=str(dirs['cache']), TMPDIR=str(dirs['tmp']))
    env.pop('PYTHON', None)
    env.update(extra)
    return env


def relative_python(cwd: Path) -> str:
    """``venv/bin/python`` relative to ``cwd``, running this interpreter with its packages."""
    if sys.prefix != sys.base_prefix:  # a venv is found from its bin/python's location
        (cwd / 'venv').symlink_to(sys.prefix, target_is_directory=True)
    else:
        (cwd / 'venv' / 'bin').mkdir(parents=True)
        (cwd / 'venv' / 'bin' / 'python').symlink_to(sys.executable)
    return 'venv/bin/python'


def dry_run_field(output: str, name: str) -> str:
    prefix = f'[install_mmcv] dry run: {name}: '
    lines = [line[len(prefix):] for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f'no single "{prefix}" line in:\n{output}'
    return lines[0]


def local_package_folder(tmp_path: Path) -> Path:
    """A folder pip takes as its only package source (``--no-index --find-links``), holding an
    mmcv 2.1.0 sdist made here: the dry run needs no network, so it runs offline."""
    folder, src = tmp_path / 'packages', tmp_path / 'sdist' / 'mmcv-2.1.0'
    src.mkdir(parents=True)
    folder.mkdir()
    (src / 'setup.py').write_text(MMCV_SETUP_PY)
    (src / 'PKG-INFO').write_text('Metadata-Version: 2.1\nName: mmcv\nVersion: 2.1.0\n')
    with tarfile.open(folder / 'mmcv-2.1.0.tar.gz', 'w:gz') as tar:
        tar.add(src, arcname=src.name)
    return folder


def test_mmcv_source_build_dry_run_with_relative_python(tmp_path):
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    python = relative_python(cwd)
    # pip reads its options from the environment: no index, the local folder only; and a
    # proxy that refuses every connection, so that any use of the network fails the run
    refused, packages = 'http://127.0.0.1:9', local_package_folder(tmp_path)
    env = isolated_env(tmp_path, PYTHON=python, MMCV_DRY_RUN='1', MMCV_FROM_SOURCE='1',
                       PIP_NO_INDEX='1', PIP_FIND_LINKS=str(packages),
                       PIP_PROXY=refused, http_proxy=refused, https_proxy=refused,
                       HTTP_PROXY=refused, HTTPS_PROXY=refused, no_proxy='', NO_PROXY='')
    proc = subprocess.run(['bash', str(INSTALL_MMCV)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert 'Successfully downloaded mmcv' in output
    # the sdist came from the local folder; no index was asked
    assert f'Processing {packages / "mmcv-2.1.0.tar.gz"}' in output
    assert f'Looking in links: {packages}' in output and 'Looking in indexes' not in output

    absolute = str(cwd / python)
    assert f'[install_mmcv] python: {absolute}\n' in proc.stdout
    src = Path(dry_run_field(proc.stdout, 'build cwd'))
    command = shlex.split(dry_run_field(proc.stdout, 'build command'))
    assert command[0] == absolute and command[1:4] == ['-m', 'pip', 'wheel'], command
    assert command[-1] == '.' and '--no-build-isolation' in command
    # nothing was installed or compiled
    assert 'dry run: would run:' in proc.stdout and 'compiling [' not in proc.stdout
    assert not any((tmp_path / 'cache').rglob('*.whl'))
    # the build's python, as written, starts from inside the source tree
    check = subprocess.run([command[0], '-c', 'import sys; print(sys.prefix)'], cwd=src,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    setup_py = (src / 'setup.py').read_text()
    assert setup_py == MMCV_SETUP_PY.replace('c++14', 'c++20').replace('c++17', 'c++20')


@pytest.mark.parametrize('python, message', [
    ('venv/bin/no-such-python', 'does not exist or is not executable'),
    ('no-such-dir/bin/python', 'does not exist'),
    ('no-such-python-3.11', 'no such command on PATH'),
])
def test_mmcv_install_names_a_missing_python(tmp_path, python, message):
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    relative_python(cwd)
    proc = subprocess.run(['bash', str(INSTALL_MMCV), '--dry-run'], cwd=cwd,
                          env=isolated_env(tmp_path, PYTHON=python), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert f'ERROR: PYTHON={python}' in proc.stderr and message in proc.stderr, proc.stderr


def test_mmcv_install_rejects_unknown_arguments(tmp_path):
    proc = subprocess.run(['bash', str(INSTALL_MMCV), '--dryrun'], env=isolated_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "unknown argument '--dryrun'" in proc.stderr


@pytest.mark.parametrize('has_venv, preset, expected', [
    (True, None, '{root}/.venv/bin/python'),
    (False, None, 'python'),
    (True, '/opt/py/bin/python3', '/opt/py/bin/python3'),
])
def test_python_choice(tmp_path, has_venv, preset, expected):
    """tools/_python.sh: PYTHON if set, else <repo>/.venv/bin/python if present, else python."""
    repo = tmp_path / 'repo'
    (repo / 'tools').mkdir(parents=True)
    shutil.copy(ROOT / 'tools' / '_python.sh', repo / 'tools' / '_python.sh')
    if has_venv:
        (repo / '.venv' / 'bin').mkdir(parents=True)
        (repo / '.venv' / 'bin' / 'python').symlink_to(sys.executable)
    env = {'PATH': '/usr/bin:/bin'}
    if preset:
        env['PYTHON'] = preset
    proc = subprocess.run(
        ['bash', '-c', f'set -euo pipefail; source {repo}/tools/_python.sh; echo "$PYTHON"'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected.format(root=repo)


@pytest.mark.skipif(not VENV_PYTHON.exists(),
                    reason=f'{VENV_PYTHON} does not exist: `make env` builds it')
def test_dist_test_uses_the_venv_without_activation(tmp_path):
    """The README's ``tools/dist_test.sh CONFIG CKPT N`` after ``make test``: no PYTHON, no
    activated venv, no torch on PATH. ``--help`` reaches tools/test.py through torchrun."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'OMP_NUM_THREADS': '1',
           'PORT': str(port)}
    proc = subprocess.run(['bash', '-x', 'tools/dist_test.sh', 'CONFIG.py', 'CKPT.pth', '1',
                           '--help'], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the xtrace line of the launch, e.g. "+ PYTHONPATH=... /repo/.venv/bin/python -m ..."
    launches = [line for line in proc.stderr.splitlines()
                if line.startswith('+') and ' -m torch.distributed.run ' in line]
    assert len(launches) == 1, proc.stderr[-3000:]
    assert f' {VENV_PYTHON} -m torch.distributed.run ' in launches[0], launches[0]
    assert 'Test (and evaluate) an mmevf model' in proc.stdout
