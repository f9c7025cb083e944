"""tools/infer.py: one overlay (with the expression drawn) and one binary mask PNG per
expression, from a config name, a tiny_checkpoint and a tokenizer folder; with a no-target
head, a "no target (score 0.93)" line per expression that names nothing."""
import json
import re
import sys

import mmcv
import numpy as np
import pytest

from tests.conftest import force_no_target, load_tool, run_command


def test_infer_writes_overlays_and_masks(synthref_root, xlmr_tokenizer_dir, tiny_checkpoint,
                                         tmp_path):
    """The suite's one real subprocess run of tools/infer.py (the others call it in-process)."""
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    expressions = ['the red circle left of the blue square', '[semantic] sky', 'leftmost zebra']
    out_dir = tmp_path / 'out'
    printed = run_command([
        sys.executable, 'tools/infer.py', str(image), *expressions, '--config',
        'evf-tiny_synthref', '--weights', str(tiny_checkpoint), '--tokenizer',
        str(xlmr_tokenizer_dir), '--out-dir', str(out_dir), '--device', 'cpu'
    ], OMP_NUM_THREADS='1')
    original = mmcv.imread(str(image), channel_order='rgb')
    for i, text in enumerate(expressions):
        overlay = mmcv.imread(str(out_dir / 'vis' / f'{image.stem}_{i}.png'), channel_order='rgb')
        assert overlay.shape == original.shape
        assert np.abs(overlay[:12, :40].astype(int) - original[:12, :40]).mean() > 5  # text
        mask = mmcv.imread(str(out_dir / 'masks' / f'{image.stem}_{i}.png'), flag='unchanged')
        assert mask.shape == original.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert f'"{text}"' in printed
    assert (out_dir / 'preds' / f'{image.stem}.json').is_file()
    assert 'no target' not in printed  # a model without a no-target head


def test_infer_reports_no_target(synthref_root, xlmr_tokenizer_dir, no_target_model, tmp_path,
                                 capsys, monkeypatch):
    """Expression 0 has no target (the head says so with p 0.93), expression 1 has one."""
    config, weights = no_target_model
    force_no_target(monkeypatch, [True, False])
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    out_dir = tmp_path / 'out'
    results = load_tool('infer').main([
        str(image), 'red circle', 'blue square', '--config', str(config), '--weights',
        str(weights), '--tokenizer', str(xlmr_tokenizer_dir), '--out-dir', str(out_dir),
        '--device', 'cpu'
    ])
    lines = capsys.readouterr().out.splitlines()
    stem = image.stem
    assert f'  [0] no target (score 0.93)  vis/{stem}_0.png  masks/{stem}_0.png  "red circle"' \
        in lines
    target = [line for line in lines if line.startswith('  [1] ')]
    assert len(target) == 1 and re.fullmatch(
        rf'  \[1\] score \d\.\d{{3}} +\d+\.\d% of the image  vis/{stem}_1\.png  '
        rf'masks/{stem}_1\.png  "blue square"', target[0]), target
    pred = results['predictions'][0]
    assert pred['no_target'] == [True, False] and pred['masks'][1].any()
    for i in range(2):
        assert (out_dir / 'vis' / f'{stem}_{i}.png').is_file()
        mask = mmcv.imread(str(out_dir / 'masks' / f'{stem}_{i}.png'), flag='unchanged')
        np.testing.assert_array_equal(mask > 0, pred['masks'][i])
    assert not pred['masks'][0].any()
    record = json.loads((out_dir / 'preds' / f'{stem}.json').read_text())
    assert record['no_target'] == [True, False]
    assert record['no_target_scores'] == pytest.approx([0.93, 0.07], abs=1e-5)


def test_infer_folder_bf16_and_errors(synthref_root, xlmr_tokenizer_dir, tiny_checkpoint, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    for path in sorted((synthref_root / 'images').glob('*.jpg'))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    infer = load_tool('infer')
    args = ['--config', 'evf-tiny_synthref', '--weights', str(tiny_checkpoint), '--tokenizer',
            str(xlmr_tokenizer_dir), '--out-dir', str(tmp_path / 'out'), '--device', 'cpu']
    results = infer.main([str(folder), 'red circle', 'blue square', *args, '--dtype', 'bf16'])
    assert [r['masks'].shape[0] for r in results['predictions']] == [2, 2]
    assert len(list((tmp_path / 'out' / 'vis').glob('*.png'))) == 4
    with pytest.raises(ValueError, match='empty expression #1'):
        infer.main([str(folder), 'red circle', '', *args])
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        infer.main([str(tmp_path / 'missing.jpg'), 'red circle', *args])
