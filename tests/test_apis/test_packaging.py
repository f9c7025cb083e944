"""A non-editable install ships the configs: installed with ``pip install --target`` (no ``-e``),
config names resolve to ``mmevf/.mim/configs`` inside the installed package (the layout of
mmdet's wheels) and every config found there loads with its ``_base_`` files (relative
paths into ``.mim/configs/_base_``), from a folder away from the checkout."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the build reads: setup.py and its inputs (MANIFEST.in lists the same for an sdist).
SOURCES = ('setup.py', 'MANIFEST.in', 'README.md', 'requirements.txt', 'requirements', 'mmevf',
           'configs')

# Run by the installed interpreter's environment with only the target folder added: what the
# child imports must come from there, not from the checkout (whose editable finder sits in the
# venv's site-packages, behind PYTHONPATH on sys.path).
CHECK = r'''
import glob, json, os, os.path as osp, sys
import mmevf
from mmengine.config import Config
from mmevf.apis.inference_inputs import config_root, resolve_config

path = resolve_config('evf-tiny_synthref')
cfg = Config.fromfile(path)
failed = {}
for config in sorted(glob.glob(osp.join(config_root(), '**', '*.py'), recursive=True)):
    if '_base_' in osp.relpath(config, config_root()).split(os.sep):
        continue
    try:
        Config.fromfile(config)
    except Exception as err:  # reported by name below
        failed[osp.relpath(config, config_root())] = f'{type(err).__name__}: {err}'
print(json.dumps(dict(
    mmevf=mmevf.__file__, apis=sys.modules['mmevf.apis.inference_inputs'].__file__,
    config=path, cfg_file=cfg.filename, root=config_root(),
    model=cfg.model.type, has_test_pipeline='test_pipeline' in cfg,
    default_scope=cfg.get('default_scope'), max_iters=cfg.train_cfg.get('max_iters'),
    failed=failed)))
'''


def copy_sources(destination: Path) -> None:
    """The build inputs of the checkout, without caches: pip builds in the source folder
    (build/, *.egg-info), so a copy keeps the working tree untouched."""
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info', '.mim')
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=ignore)
        elif source.is_file():
            shutil.copy2(source, destination / name)


@pytest.mark.slow
def test_config_names_resolve_in_a_non_editable_install(tmp_path):
    source, target, elsewhere = tmp_path / 'src', tmp_path / 'site', tmp_path / 'elsewhere'
    source.mkdir()
    elsewhere.mkdir()
    copy_sources(source)
    build = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation',
         '--no-index', '--disable-pip-version-check', '--quiet', '--target', str(target),
         str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    mim = target / 'mmevf' / '.mim' / 'configs'
    assert (mim / 'evf_sam' / 'evf-tiny_synthref.py').is_file()
    assert (mim / '_base_' / 'default_runtime.py').is_file()
    assert not (source / 'mmevf' / '.mim').exists()  # copied into the build folder only

    env = {k: v for k, v in os.environ.items() if not k.startswith('PYTHON')}
    env.update(PYTHONPATH=str(target), OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    check = subprocess.run([sys.executable, '-c', CHECK], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    found = json.loads(check.stdout.strip().splitlines()[-1])

    installed = target / 'mmevf'
    # the child imported the installed copy, not the checkout
    assert Path(found['mmevf']).parent == installed, found['mmevf']
    assert Path(found['apis']).is_relative_to(installed), found['apis']
    assert Path(found['root']) == mim
    assert Path(found['config']) == mim / 'evf_sam' / 'evf-tiny_synthref.py'
    assert found['cfg_file'] == found['config']
    # the `_base_` chain: model, dataset and schedule files, and the runtime file the schedule
    # inherits in turn, all read from .mim through relative paths
    assert found['model'] and found['has_test_pipeline'] and found['max_iters']
    assert found['default_scope'] == 'mmevf'
    assert found['failed'] == {}
