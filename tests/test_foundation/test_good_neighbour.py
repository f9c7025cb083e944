"""mmevf as a good neighbour: where it is installed, mmdet and mmpretrain work in interpreters that
never import mmevf. ``pip install`` (also ``-e``, as tools/install/setup_env.sh does) puts
``mmevf-import-hook.pth`` and ``_mmevf_import_hook.py`` (mmevf/compat/import_hook.py) at the root
of site-packages; the hook applies mmevf's mmpretrain fix when mmpretrain is first imported.

The two host cases (with the hook, and without it) share one interpreter started as a host's
(``host_cases`` below): it imports the libraries below OpenMMLab and mmengine, then runs each
case in a fork of itself (tests/fixtures/forked_cases.py)."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from mmevf.compat import import_hook
from mmevf.compat.mmpretrain import needs_mmpretrain_fix

from tests.fixtures.forked_cases import PRELOAD, check, run_in_forks

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(sysconfig.get_paths()['purelib'])
PTH = SITE / 'mmevf-import-hook.pth'
HOOK = SITE / '_mmevf_import_hook.py'
PTH_LINE = 'import _mmevf_import_hook; _mmevf_import_hook.install()\n'

# What an mmdet / mmpretrain user does, in an interpreter that never imports mmevf.
HOST_SCRIPT = r'''
import sys
import torch
import mmdet.models
from mmdet.utils import register_all_modules
register_all_modules()
from mmdet.registry import MODELS as DET_MODELS
detector = DET_MODELS.build(dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]),
    backbone=dict(type='ResNet', depth=18, out_indices=(1, 2, 3), init_cfg=None),
    neck=dict(type='FPN', in_channels=[128, 256, 512], out_channels=16, start_level=0,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaHead', num_classes=3, in_channels=16, stacked_convs=1, feat_channels=16,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
        loss_bbox=dict(type='L1Loss')),
    test_cfg=dict(nms_pre=100, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=10))).eval()
with torch.no_grad():
    scores, _ = detector(torch.zeros(1, 3, 64, 64), mode='tensor')
print('RESULT retinanet', [tuple(s.shape) for s in scores][:2])

import mmpretrain.models
from mmpretrain.utils import register_all_modules as register_mmpretrain
register_mmpretrain()
from mmpretrain.registry import MODELS as CLS_MODELS
classifier = CLS_MODELS.build(dict(
    type='ImageClassifier', backbone=dict(type='ResNet', depth=18),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=5, in_channels=512))).eval()
with torch.no_grad():
    print('RESULT classifier', tuple(classifier(torch.zeros(1, 3, 64, 64), mode='tensor').shape))

from mmpretrain.utils import dependency
print('RESULT mmevf imported:', any(m == 'mmevf' or m.startswith('mmevf.') for m in sys.modules))
print('RESULT fix applied:', '_mmevf_mmpretrain_fix' in sys.modules, dependency.WITH_MULTIMODAL)
'''
# The same interpreter without the hook: its finder taken out of sys.meta_path before anything
# imports mmpretrain, as if mmevf-import-hook.pth were not there.
NO_HOOK_SCRIPT = r'''
import _mmevf_import_hook
_mmevf_import_hook.uninstall()
try:
    import mmdet.models
    print('RESULT imported')
except Exception as error:
    print('RESULT failed:', type(error).__name__, error)
'''

# RetinaNet: 9 anchors x 3 classes per location at strides 8, 16 of a 64² input
HOST_OUTPUT = ['retinanet [(1, 27, 8, 8), (1, 27, 4, 4)]', 'classifier (1, 5)',
               'mmevf imported: False']

# What the interpreter has after start-up (site and every .pth), before any import of its own.
STARTUP_SCRIPT = r'''
import sys
print([type(f).__name__ for f in sys.meta_path if type(f).__name__ == 'MmpretrainFixFinder'])
print(sorted(m for m in ('torch', 'transformers', 'mmengine', 'mmpretrain', 'mmevf', 'mmdet')
             if m in sys.modules))
'''


def host_env(**extra) -> dict:
    """This environment without the repository on the path: mmevf only as installed."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', import_hook.ENV_SWITCH)}
    env.update(OMP_NUM_THREADS='1', **extra)
    return env


def python(args: list, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=host_env(**env),
                          capture_output=True, text=True, timeout=300)


def test_the_installed_hook_is_this_checkouts():
    """``pip install -e .`` installed the hook into this interpreter's site-packages, and it is
    the current mmevf/compat/import_hook.py (else: re-run ``make env`` / ``pip install -e .``)."""
    assert PTH.is_file() and HOOK.is_file(), \
        f'no start-up hook in {SITE}: run `pip install --no-build-isolation --no-deps -e {ROOT}`'
    assert PTH.read_text() == PTH_LINE
    assert HOOK.read_bytes() == (ROOT / 'mmevf/compat/import_hook.py').read_bytes(), \
        f'{HOOK} is stale: run `pip install --no-build-isolation --no-deps -e {ROOT}`'


@pytest.fixture(scope='module')
def host_cases(tmp_path_factory) -> dict:
    """HOST_SCRIPT and NO_HOOK_SCRIPT in an interpreter of this environment, mmevf only as
    installed; the setup imports nothing of mmcv, mmdet, mmpretrain or mmevf (checked)."""
    results = run_in_forks(PRELOAD, {'host': HOST_SCRIPT, 'no_hook': NO_HOOK_SCRIPT},
                           cwd=tmp_path_factory.mktemp('host'), env=host_env())
    assert results[''][0] == ['preloaded []'], results['']
    return results


def test_mmdet_and_mmpretrain_work_without_importing_mmevf(host_cases):
    # (deepspeed, imported by mmdet through transformers, logs to stdout: RESULT lines only)
    lines = check(host_cases, 'host')
    assert lines[:3] == HOST_OUTPUT
    needed = needs_mmpretrain_fix()
    # where the stack needs it, the hook switched the multimodal models off; elsewhere it
    # loaded the fix, which left mmpretrain alone
    assert lines[3] == f'fix applied: True {not needed}'


def test_without_the_hook_mmdet_models_fail_on_this_stack(host_cases):
    """The same interpreter with the hook's finder removed before anything imports mmpretrain
    (NO_HOOK_SCRIPT): ``import mmdet.models`` fails where the fix is needed, so the hook is
    what makes it work above."""
    lines = check(host_cases, 'no_hook')
    if needs_mmpretrain_fix():
        assert len(lines) == 1 and lines[0].startswith('failed: '), lines
        assert 'NoneType takes no arguments' in lines[0], lines
    else:
        assert lines == ['imported']


def test_startup_is_cheap_and_the_hook_can_be_switched_off(tmp_path):
    proc = python(['-c', STARTUP_SCRIPT], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['MmpretrainFixFinder']", '[]']
    off = python(['-c', STARTUP_SCRIPT], tmp_path, **{import_hook.ENV_SWITCH: '0'})
    assert off.returncode == 0, off.stderr
    assert off.stdout.splitlines() == ['[]', '[]']


def source_copy(tmp_path: Path) -> Path:
    """What setup.py needs, copied: the builds below leave the checkout's build/ alone."""
    src = tmp_path / 'src'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in ('mmevf', 'configs', 'requirements'):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ('setup.py', 'README.md', 'MANIFEST.in'):
        shutil.copy(ROOT / name, src / name)
    return src


def root_files(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as zf:
        return {name: zf.read(name) for name in zf.namelist() if '/' not in name}


def test_regular_and_editable_wheels_carry_the_hook(tmp_path):
    """The wheels pip installs for ``pip install .`` and ``pip install -e .`` (setuptools'
    PEP 517 / 660 hooks, as pip calls them; nothing is installed) put the hook at the root."""
    src = source_copy(tmp_path)
    build = ('import sys; from setuptools import build_meta as b; '
             'print(getattr(b, sys.argv[1])(sys.argv[2]))')
    hook_source = (ROOT / 'mmevf/compat/import_hook.py').read_bytes()
    for kind in ('build_wheel', 'build_editable'):
        out = tmp_path / kind
        out.mkdir()
        proc = subprocess.run([sys.executable, '-c', build, kind, str(out)], cwd=src,
                              env=host_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        files = root_files(out / proc.stdout.strip().splitlines()[-1])
        assert files['mmevf-import-hook.pth'] == PTH_LINE.encode(), kind
        assert files['_mmevf_import_hook.py'] == hook_source, kind


def test_finder_wraps_one_import_then_removes_itself(tmp_path, monkeypatch):
    """In this process, on a stand-in package: the finder hands the first import a loader that
    runs the package's own code and then the fix, keeps the package's own loader on the module,
    and leaves ``sys.meta_path`` as it was; ``MMEVF_IMPORT_HOOK=0`` keeps it out."""
    (tmp_path / 'standin_pkg').mkdir()
    (tmp_path / 'standin_pkg' / '__init__.py').write_text('ORDER = ["package"]\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(import_hook, 'TARGET', 'standin_pkg')
    calls = []
    monkeypatch.setattr(import_hook, 'apply_fix',
                        lambda: calls.append(sys.modules['standin_pkg'].ORDER[:]) or True)
    before = list(sys.meta_path)
    monkeypatch.setenv(import_hook.ENV_SWITCH, '0')
    assert not import_hook.install() and sys.meta_path == before
    monkeypatch.delenv(import_hook.ENV_SWITCH)
    try:
        assert import_hook.install() and import_hook.installed()
        assert not import_hook.install()  # once
        import standin_pkg
        assert calls == [['package']]  # the fix ran after the package's own code
        assert not import_hook.installed() and sys.meta_path == before
        assert not isinstance(standin_pkg.__loader__, import_hook.FixingLoader)
        assert not import_hook.install()  # imported already: nothing to wrap
    finally:
        import_hook.uninstall()
        sys.modules.pop('standin_pkg', None)


def test_apply_fix_runs_mmevfs_fix_and_only_warns_when_it_fails(monkeypatch):
    """The hook loads mmevf/compat/mmpretrain.py by its file (not the mmevf package) and runs
    its fix; an error in it becomes a warning, so the host's import of mmpretrain goes on."""
    monkeypatch.delitem(sys.modules, import_hook.FIX_MODULE, raising=False)
    assert import_hook.apply_fix() in (True, False)
    module = sys.modules[import_hook.FIX_MODULE]
    assert Path(module.__file__) == ROOT / 'mmevf' / 'compat' / 'mmpretrain.py'

    def broken():
        raise RuntimeError('boom')
    monkeypatch.setattr(module, 'fix_mmpretrain_import', broken)
    with pytest.warns(RuntimeWarning, match='could not apply its mmpretrain fix'):
        assert import_hook.apply_fix() is False
