"""The released configs: BEiT-3-L + SAM-2-L has the paper's 898M parameters (counted on the
meta device by tools/analysis/count_params.py); every config parses with SAM-2's pipeline and
imports the package by its mmdet-style name; the short name ``evf_sam2`` gives the same modules."""
import os
import subprocess
import sys
import textwrap

import pytest
from evf_sam2_helpers import PROJECT, ROOT, require_sam2, run_command

require_sam2()

CONFIGS = sorted((PROJECT / 'configs').glob('*.py'))
PACKAGE = 'projects.EVF-SAM2.evf_sam2'


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


@pytest.mark.parametrize('first', ['short', 'full'])
def test_short_name_is_the_same_package(tmp_path, first):
    """A config of the first release (``custom_imports=['evf_sam2']``, the project folder on the
    path) and the mmdet-style name load one package: same module objects, EVFSAM2 registered
    once, whichever comes first (a second copy would raise 'already registered')."""
    old_config = tmp_path / 'old_config.py'
    old_config.write_text(f"_base_ = ['{PROJECT / 'configs' / 'evf-sam2-tiny_synthref.py'}']\n"
                          "custom_imports = dict(imports=['evf_sam2'])\n")
    imports = ['evf_sam2', PACKAGE] if first == 'short' else [PACKAGE, 'evf_sam2']
    script = textwrap.dedent(f"""
        import importlib, sys
        sys.path.insert(0, {str(PROJECT)!r})
        from mmengine.config import Config
        from mmevf.registry import MODELS
        a, b = (importlib.import_module(name) for name in {imports!r})
        assert a is b, (a, b)
        import evf_sam2.video
        assert evf_sam2.video is sys.modules[{PACKAGE!r} + '.video']
        cfg = Config.fromfile({str(old_config)!r})  # imports 'evf_sam2' once more
        assert MODELS.get('EVFSAM2') is a.EVFSAM2
        assert a.EVFSAM2.__module__ == {PACKAGE!r} + '.evf_sam2'
        print('one package')
    """)
    proc = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0 and 'one package' in proc.stdout, proc.stderr[-3000:]
