"""tools/infer.py: one overlay (with the expression drawn) and one binary mask PNG per
expression, from a config name, a tiny_checkpoint and a tokenizer folder."""

import mmcv
import numpy as np
import pytest

from tests.conftest import load_tool


def test_infer_writes_overlays_and_masks(synthref_root, xlmr_tokenizer_dir, tiny_checkpoint,
                                         tmp_path, capsys):
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    expressions = ['the red circle left of the blue square', '[semantic] sky', 'leftmost zebra']
    out_dir = tmp_path / 'out'
    load_tool('infer').main([
        str(image), *expressions, '--config', 'evf-tiny_synthref', '--weights',
        str(tiny_checkpoint), '--tokenizer', str(xlmr_tokenizer_dir), '--out-dir', str(out_dir),
        '--device', 'cpu'
    ])
    original = mmcv.imread(str(image), channel_order='rgb')
    printed = capsys.readouterr().out
    for i, text in enumerate(expressions):
        overlay = mmcv.imread(str(out_dir / 'vis' / f'{image.stem}_{i}.png'), channel_order='rgb')
        assert overlay.shape == original.shape
        assert np.abs(overlay[:12, :40].astype(int) - original[:12, :40]).mean() > 5  # text
        mask = mmcv.imread(str(out_dir / 'masks' / f'{image.stem}_{i}.png'), flag='unchanged')
        assert mask.shape == original.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert f'"{text}"' in printed
    assert (out_dir / 'preds' / f'{image.stem}.json').is_file()


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
