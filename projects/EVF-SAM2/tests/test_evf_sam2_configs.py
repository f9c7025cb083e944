"""The released configs: BEiT-3-L + SAM-2-L has the paper's 898M parameters (counted on the
meta device by tools/analysis/count_params.py); every config parses with SAM-2's pipeline. (That a
config loaded as users run it imports the package by its one name: test_evf_sam2_video.py, beside
the video command line that loads it.)"""
import sys

import pytest
from evf_sam2_helpers import PACKAGE, PROJECT, require_sam2

require_sam2()

from tests.conftest import load_tool  # noqa: E402

CONFIGS = sorted((PROJECT / 'configs').glob('*.py'))


def test_param_count_l_matches_paper(monkeypatch, capsys):
    """tools/analysis/count_params.py in this process (its command line: its ``main()`` on
    ``sys.argv``), the table it prints read back."""
    monkeypatch.setattr(sys, 'argv', [
        'count_params.py', str(PROJECT / 'configs' / 'evf-sam2_beit3l_sam2-l_refcoco.py')])
    load_tool('analysis/count_params').main()
    out = capsys.readouterr().out
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
