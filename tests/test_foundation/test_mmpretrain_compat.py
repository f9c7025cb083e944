"""mmpretrain 1.2 under transformers 5 (mmevf/compat/mmpretrain.py): mmpretrain's models build
whatever the import order, through mmevf's registry or mmpretrain's own; the fix stays out of
the way where it is not needed. That this stack needs it (a bare `import mmpretrain.models`
fails) is tests/test_foundation/test_good_neighbour.py's
test_without_the_hook_mmdet_models_fail_on_this_stack (mmdet.models imports it).

The import-order cases each need an interpreter in which nothing of mmpretrain or mmevf has
been imported yet. They share one (``cases`` below; tests/fixtures/forked_cases.py): it imports
the libraries every case imports first (torch, transformers, mmengine, ...: most of an
interpreter's ~10 s of imports), then runs each case in a fork of itself."""
import os
from pathlib import Path

import pytest

from mmevf.compat import mmpretrain as compat
from tests.fixtures.forked_cases import PRELOAD, check, run_in_forks

ROOT = Path(__file__).resolve().parents[2]

# A tiny ViTSAM built by its scoped name from scope mmevf: mmengine imports mmpretrain.models
# lazily at this lookup (registry location), i.e. after whatever the script did before.
BUILD_VITSAM = r'''
import torch
from mmevf.engine.runner_setup import register_all_modules
from mmevf.registry import MODELS
register_all_modules()
encoder = MODELS.build(dict(
    type='mmpretrain.ViTSAM',
    arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64,
              global_attn_indexes=[1]),
    img_size=64, window_size=2, out_channels=16))
print('RESULT', type(encoder).__name__, tuple(encoder(torch.zeros(1, 3, 64, 64))[-1].shape))
'''

# What the process did with mmpretrain before `import mmevf`.
BEFORE = {
    'nothing': '',
    # the package alone: apis, utils, registry; not mmpretrain.models
    'package': 'import mmpretrain',
    # failed imports leave half-registered multimodal models behind
    'failed_import': 'try:\n    import mmpretrain.models\nexcept TypeError:\n    pass',
    'failed_register_all': ('import mmpretrain.utils\ntry:\n'
                            '    mmpretrain.utils.register_all_modules(False)\n'
                            'except TypeError:\n    pass'),
}

# mmpretrain's own registry after `import mmevf`; the explicit import comes first (no ViTSAM
# build in this case: its registry lookup would import mmpretrain.models already).
MODELS_AFTER_MMEVF = r'''
import torch
import mmevf
import mmpretrain.models
from mmpretrain.registry import MODELS
convnext = MODELS.build(dict(type='ConvNeXt', arch=dict(depths=[1, 1], channels=[8, 16]),
                             out_indices=(1, ), gap_before_final_norm=False))
print('RESULT', type(convnext).__name__, tuple(convnext(torch.zeros(1, 3, 32, 32))[0].shape))
try:  # the multimodal models are placeholders, as without transformers
    MODELS.build(dict(type='BlipCaption'))
except ImportError as err:
    print('RESULT placeholder:', 'multi-modal' in str(err))
'''

CASES = {**{f'vitsam_after_{before}': f'{code}\nimport mmevf\n{BUILD_VITSAM}'
            for before, code in BEFORE.items()},
         'models_after_mmevf': MODELS_AFTER_MMEVF}

@pytest.fixture(scope='module')
def cases() -> dict:
    """Without mmevf's start-up hook (``MMEVF_IMPORT_HOOK=0``, mmevf/compat/import_hook.py;
    tests/test_foundation/test_good_neighbour.py tests it): what is tested here is the fix
    ``import mmevf`` applies, whatever came before it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', MMEVF_IMPORT_HOOK='0')
    results = run_in_forks(PRELOAD, CASES, cwd=ROOT, env=env)
    assert results[''][0] == ['preloaded []'], results['']
    return results


@pytest.mark.parametrize('before', list(BEFORE))
def test_vitsam_builds_through_mmevf_whatever_came_before(cases, before):
    case = f'vitsam_after_{before}'
    assert check(cases, case) == ['ViTSAM (1, 16, 4, 4)'], case


def test_mmpretrain_models_import_after_mmevf(cases):
    assert check(cases, 'models_after_mmevf') == ['ConvNeXt (1, 16, 4, 4)', 'placeholder: True']


@pytest.mark.parametrize('versions,needed', [
    ({'mmpretrain': '1.2.0', 'transformers': '5.0.0'}, True),
    ({'mmpretrain': '1.2.0', 'transformers': '4.57.1'}, False),  # multimodal models import
    ({'mmpretrain': '1.3.0', 'transformers': '5.0.0'}, False),  # a release we do not know
    ({'transformers': '5.0.0'}, False),  # mmpretrain not installed
])
def test_version_guard(monkeypatch, versions, needed):
    def version(name):
        if name not in versions:
            raise compat.importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(compat.importlib.metadata, 'version', version)
    assert compat.needs_mmpretrain_fix() is needed


def test_fix_leaves_mmpretrain_alone_when_not_needed_and_is_idempotent(monkeypatch):
    from mmpretrain.utils import dependency
    monkeypatch.setattr(dependency, 'WITH_MULTIMODAL', True)  # as a fresh mmpretrain has it
    monkeypatch.setattr(compat, 'needs_mmpretrain_fix', lambda: False)
    assert compat.fix_mmpretrain_import() is False
    assert dependency.WITH_MULTIMODAL is True
    monkeypatch.setattr(compat, 'needs_mmpretrain_fix', lambda: True)
    assert compat.fix_mmpretrain_import() is True
    assert dependency.WITH_MULTIMODAL is False
    assert compat.fix_mmpretrain_import() is False  # applied once
    assert dependency.WITH_MULTIMODAL is False
