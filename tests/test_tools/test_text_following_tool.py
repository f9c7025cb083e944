"""tools/analysis/text_following.py: the val split through the test loop with cIoU and the
cross-object IoU, printed; with the visualization hook on, the real runner writes the overlays
and the contact sheet."""
from pathlib import Path

import mmcv
import pytest
from mmengine.config import Config

from mmevf.registry import DATASETS
from tests.conftest import load_tool, synthref_dataset_cfg

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')


def test_prints_crossIoU_of_the_split(synthref_root, xlmr_tokenizer_dir, tiny_checkpoint, tmp_path,
                                       capsys):
    tool = load_tool('analysis/text_following')
    pipeline = Config.fromfile(CONFIG).val_dataloader.dataset.pipeline
    tokenize = [t['type'] for t in pipeline].index('TokenizeText')
    work_dir = tmp_path / 'work'
    metrics = tool.main([
        CONFIG, str(tiny_checkpoint), '--split', 'val', '--work-dir', str(work_dir), '--cfg-options',
        f'val_dataloader.dataset.data_root={synthref_root}/',
        f'val_dataloader.dataset.pipeline.{tokenize}.tokenizer={xlmr_tokenizer_dir}',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'val_dataloader.batch_size=2',
        # what tools/test.py --show-dir vis does, on 2 images
        'default_hooks.visualization.draw=True', 'default_hooks.visualization.test_out_dir=vis',
        'default_hooks.visualization.max_images=2'])
    assert set(metrics) == {'val/cIoU', 'val/gIoU', 'val/crossIoU', 'val/pairs', 'val/images'}
    # the pairs counted from the annotations: expressions of different annotations (SynthRef's
    # objects do not overlap, so the ground-truth IoU rule finds exactly these)
    dataset = DATASETS.build(synthref_dataset_cfg(synthref_root, 'val'))
    expected_pairs, images = 0, 0
    for index in range(len(dataset)):
        objects = [str(i['mask']) for i in dataset.get_data_info(index)['instances']]
        pairs = sum(a != b for k, a in enumerate(objects) for b in objects[k + 1:])
        expected_pairs, images = expected_pairs + pairs, images + (pairs > 0)
    assert (metrics['val/pairs'], metrics['val/images']) == (expected_pairs, images)
    assert expected_pairs > 0
    assert 0.0 <= metrics['val/crossIoU'] <= 1.0
    printed = capsys.readouterr().out
    assert (f'text following (val): cross-object IoU {metrics["val/crossIoU"]:.3f} over '
            f'{metrics["val/pairs"]} pairs') in printed
    assert ' crossIoU ' in printed.splitlines()[-4]  # the table's header, a column of its own

    run_dirs = list(work_dir.glob('*/vis'))
    assert len(run_dirs) == 1
    shapes = [mmcv.imread(str(p)).shape for p in sorted(run_dirs[0].glob('*.png'))]
    assert shapes and all(max(shape[:2]) == 512 for shape in shapes)  # upscaled SynthRef
    # 2 images (rows) x 3 expressions (columns; every image names >= 3 objects)
    cell_h, cell_w = max(s[0] for s in shapes), max(s[1] for s in shapes)
    sheet = mmcv.imread(str(run_dirs[0].parent / 'contact_sheet.png'))
    assert sheet.shape == (2 * cell_h + 3 * 8, 3 * cell_w + 4 * 8, 3)


def test_needs_a_split(tmp_path):
    tool = load_tool('analysis/text_following')
    cfg = Config(dict(val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[]))))
    with pytest.raises(ValueError, match='has no `split`'):
        tool.text_following_config(cfg, 'val')
