"""The released configs: BEiT-3-L + SAM-2-L has the paper's 898M parameters (counted on the
meta device by tools/analysis/count_params.py); every config parses with SAM-2's pipeline and
imports the package by its one, mmdet-style name, as the project's tools do."""
import sys
import textwrap

import pytest
from evf_sam2_helpers import PACKAGE, PROJECT, ROOT, TINY_CONFIG, require_sam2, run_command

require_sam2()

CONFIGS = sorted((PROJECT / 'configs').glob('*.py'))


def test_param_count_l_matches_paper():
    out = run_command([sys.executable, 'tools/analysis/count_params.py',
                       str(PROJECT / 'configs' / 'evf-sam2_beit3l_sam2-l_refcoco.py')], cwd=ROOT)
    total = next(line for line in out.splitlines() if line.startswith('total '))
    count = int(total.split()[1].replace(',', ''))
    # official EVF-SAM2: 224,430,130 (SAM-2-L) + 672,702,464 (BEiT-3-L) + 1,312,000
    assert count == 898_444_594
    assert abs(count - 898e6) / 898e6 < 0.01
    trainable = int(total.split()[2].replace(',', ''))
    assert trainable == 672_702_464 + 1_312_000  # BEiT-3 + projector; SAM-2 frozen


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_configs_parse_with_sam2_pipeline(path):
    from mmengine.config import Config
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == 'EVFSAM2' and cfg.custom_imports.imports == [PACKAGE]
    loaders = [cfg.train_dataloader.dataset, cfg.val_dataloader.dataset]
    loaders += list(cfg.test_dataloader.dataset.get('datasets', [cfg.test_dataloader.dataset]))
    for dataset in loaders:
        for inner in dataset.get('datasets', [dataset]):
            types = [t['type'] for t in inner['pipeline']]
            assert 'SAM2Resize' in types and 'SAMResize' not in types, types


def test_one_name():
    """The package has one name: a config and a project tool, loaded as users run them
    (``PYTHONPATH=.`` from the repository root), import ``projects.EVF-SAM2.evf_sam2`` only; the
    short name ``evf_sam2`` (a second copy, registering EVFSAM2 twice) does not import."""
    script = textwrap.dedent(f"""
        import importlib.util, runpy, sys
        from mmengine.config import Config
        from mmevf.registry import MODELS
        Config.fromfile({str(TINY_CONFIG)!r})
        runpy.run_path({str(PROJECT / 'tools' / 'infer_video.py')!r}, run_name='tool')
        assert MODELS.get('EVFSAM2').__module__ == {PACKAGE!r} + '.evf_sam2'
        assert not [name for name in sys.modules if name.split('.')[0] == 'evf_sam2']
        assert importlib.util.find_spec('evf_sam2') is None
        print('one name')
    """)
    assert 'one name' in run_command([sys.executable, '-c', script])
