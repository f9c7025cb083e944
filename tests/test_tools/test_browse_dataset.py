"""tools/analysis/browse_dataset.py: a split's items after the pipeline, drawn as the image
encoder gets them (resized, flipped, padded), each expression's mask filled in its own colour
with its text; one picture per item and a contact sheet."""
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmevf.datasets.transforms import swap_left_right
from mmevf.engine.runner_setup import register_all_modules
from mmevf.models import SAMDataPreprocessor
from mmevf.registry import DATASETS
from mmevf.visualization import ReferSegVisualizer
from mmevf.visualization.refer_seg_visualizer import EXPRESSION_COLORS, NO_TARGET_COLOR
from tests.conftest import ROOT, load_tool, synthref_dataset_cfg
from tests.fixtures.tiny_runs import tiny_cfg

SAM_SIZE = 128  # SynthRef's 256-pixel images halved: the masks must follow the resize
GAP = 8  # make_contact_sheet's
CELL = SAM_SIZE + GAP
CAPTION_ROWS = 60  # panel rows a caption may cover (up to four lines at 128 pixels)
PAD_RGB = (124, 116, 104)  # SAMDataPreprocessor's mean, rounded: zero after normalisation


@pytest.fixture(scope='module')
def configs(synthref_root, tmp_path_factory) -> Dict[str, Path]:
    """The tiny SynthRef config on the test SynthRef with the val images resized to 128
    (``plain``), and the same with a certain text-aware flip after the resize, where DIT's
    train pipeline has it (``flip``)."""
    folder = tmp_path_factory.mktemp('browse_configs')
    paths = {}
    for name in ('plain', 'flip'):
        cfg = tiny_cfg(synthref_root, folder / 'work')
        pipeline = cfg.val_dataloader.dataset.pipeline
        for transform in pipeline:
            if transform.type == 'SAMResize':
                transform.sam_size = SAM_SIZE
        if name == 'flip':
            after = [t.type for t in pipeline].index('mmdet.LoadAnnotations') + 1
            pipeline.insert(after, dict(type='TextAwareRandomFlip', prob=1.0))
        paths[name] = folder / f'{name}.py'
        cfg.dump(str(paths[name]))
    return paths


def original(synthref_root: Path, index: int) -> Tuple[List[str], np.ndarray]:
    """Val item ``index`` before any resize: its texts and (N, H, W) bool masks."""
    register_all_modules()
    dataset = DATASETS.build(synthref_dataset_cfg(synthref_root, 'val', pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False)]))
    results = dataset[index]
    return list(results['text']), results['gt_masks'].to_ndarray().astype(bool)


def packed_view(config: Path, index: int) -> np.ndarray:
    """The (h, w, 3) RGB SAM-branch image of val item ``index`` as ``config`` packs it."""
    dataset = DATASETS.build(Config.fromfile(str(config)).val_dataloader.dataset)
    return dataset[index]['inputs']['img'].flip(0).permute(1, 2, 0).numpy()


def panel(picture: np.ndarray, i: int) -> np.ndarray:
    """Expression i's (P, P, 3) panel of an item's picture (rows of four cells)."""
    y, x = GAP + (i // 4) * CELL, GAP + (i % 4) * CELL
    return picture[y:y + SAM_SIZE, x:x + SAM_SIZE]


def inner_pixels(mask: np.ndarray, margin: int = 4) -> np.ndarray:
    """(K, 2) yx of an original-size mask, ``margin`` pixels inside it, below the caption
    once halved (the resize and the outline cannot reach them)."""
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    yx = np.argwhere(cv2.erode(mask.astype(np.uint8), kernel) > 0)
    return yx[yx[:, 0] // 2 >= CAPTION_ROWS]


def outside(masks: np.ndarray, margin: int = 4) -> np.ndarray:
    """(H, W) bool: ``margin`` pixels away from every mask of ``masks`` (N, H, W)."""
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.dilate(masks.any(0).astype(np.uint8), kernel) == 0


def blended(drawn: np.ndarray, under: np.ndarray, color) -> bool:
    """Whether a drawn pixel is the half-and-half blend of ``under`` and ``color``."""
    expected = (under.astype(float) + np.array(color)) / 2
    return bool(np.abs(drawn.astype(float) - expected).max() <= 2)


def test_items_drawn_as_the_model_sees_them(configs, synthref_root, tmp_path):
    tool = load_tool('analysis/browse_dataset')
    out = tmp_path / 'browse'
    written = tool.main([str(configs['plain']), '--split', 'val', '--out-dir', str(out),
                         '--num-items', '2', '--not-show'])
    register_all_modules()
    dataset = DATASETS.build(synthref_dataset_cfg(synthref_root, 'val'))
    stems = [Path(dataset.get_data_info(k)['img_path']).stem for k in range(2)]
    assert written == [str(out / f'{k}_{stem}.png') for k, stem in enumerate(stems)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [Path(p).name for p in written] + ['contact_sheet.jpg'])
    # 2 items (rows) x 3 expressions (SynthRef images name >= 3 objects), 128-pixel panels
    sheet = mmcv.imread(str(out / 'contact_sheet.jpg'))
    assert sheet.shape == (2 * CELL + GAP, 3 * CELL + GAP, 3)

    texts, masks = original(synthref_root, 0)
    picture = mmcv.imread(written[0], channel_order='rgb')
    cells = len(texts) + 1  # one panel per expression, then the 64-pixel multimodal view
    assert picture.shape == (-(-cells // 4) * CELL + GAP, min(cells, 4) * CELL + GAP, 3)
    mm_cell = picture[GAP + (cells - 1) // 4 * CELL:, GAP + (cells - 1) % 4 * CELL:][:CELL]
    assert (mm_cell[64:SAM_SIZE, :SAM_SIZE] == 255).all()  # smaller than the panels
    assert not (mm_cell[:64, :64] == 255).all()

    view = packed_view(configs['plain'], 0)
    h, w = view.shape[:2]
    assert max(h, w) == SAM_SIZE and masks.shape[1:] == (2 * h, 2 * w)  # halved
    background = np.argwhere(outside(masks)[::2, ::2][CAPTION_ROWS:]) + (CAPTION_ROWS, 0)
    assert len(background) > 100
    checked = 0
    for i in range(len(texts)):
        drawn = panel(picture, i)
        # the image as packed (un-normalised exactly) where no mask is, the padding in the
        # preprocessor's mean colour (the encoder's zero)
        for y, x in background[::50]:
            assert tuple(drawn[y, x]) == tuple(view[y, x]), (i, y, x)
        pad = drawn[:, w:] if w < SAM_SIZE else drawn[h:]
        assert pad.size and (pad[-10:, -10:] == PAD_RGB).all()
        # the expression's own colour, half-blended, on its (halved) mask
        inside = inner_pixels(masks[i])
        for y, x in inside[::max(1, len(inside) // 5)]:
            assert blended(drawn[y // 2, x // 2], view[y // 2, x // 2],
                           EXPRESSION_COLORS[i % len(EXPRESSION_COLORS)]), (i, y, x)
            checked += 1
    assert checked >= 10


def test_flip_in_the_pipeline_shows_mirrored(configs, synthref_root, tmp_path, monkeypatch):
    captions = []
    draw = ReferSegVisualizer.draw_annotation
    monkeypatch.setattr(ReferSegVisualizer, 'draw_annotation',
                        lambda self, image, text, *a, **k: (captions.append(text),
                                                            draw(self, image, text, *a, **k))[1])
    tool = load_tool('analysis/browse_dataset')
    (path, ) = tool.main([str(configs['flip']), '--split', 'val', '--out-dir', str(tmp_path),
                          '--num-items', '1', '--not-show'])
    texts, masks = original(synthref_root, 0)
    assert any('left' in t or 'right' in t for t in texts)
    assert captions == [swap_left_right(t) for t in texts]

    picture = mmcv.imread(path, channel_order='rgb')
    view = packed_view(configs['flip'], 0)
    unflipped = packed_view(configs['plain'], 0)
    assert np.array_equal(view, unflipped[:, ::-1])
    width = masks.shape[2]
    checked = 0
    for i in range(len(texts)):
        drawn = panel(picture, i)
        color = EXPRESSION_COLORS[i % len(EXPRESSION_COLORS)]
        # pixels of the mask whose mirror image lies outside it
        away = outside(masks[i:i + 1])
        yx = [(y, x) for y, x in inner_pixels(masks[i]) if away[y, width - 1 - x]]
        for y, x in yx[::max(1, len(yx) // 5)]:
            mirrored = (y // 2, (width - 1 - x) // 2)
            assert blended(drawn[mirrored], view[mirrored], color), (i, y, x)
            assert tuple(drawn[y // 2, x // 2]) == tuple(view[y // 2, x // 2]), (i, y, x)
            checked += 1
    assert checked >= 10


def test_no_target_expression_labelled(monkeypatch):
    """An expression annotated as naming nothing (gRefCOCO's ``no_target``): its empty mask
    and "no target" in the middle, on the dark red label of a no-target prediction."""
    tool = load_tool('analysis/browse_dataset')
    texts = []
    visualizer = ReferSegVisualizer.get_instance('browse_no_target')
    draw_texts = visualizer.draw_texts
    monkeypatch.setattr(visualizer, 'draw_texts',
                        lambda t, *a, **k: (texts.append(t), draw_texts(t, *a, **k))[1])
    masks = np.zeros((2, 96, 128), np.uint8)
    masks[0, 40:80, 20:60] = 1
    sample = DetDataSample(metainfo=dict(
        img_path='x.jpg', img_shape=(96, 128), text=['the red circle', 'the pink cube'],
        no_target=[False, True]))
    sample.gt_instances = InstanceData(masks=BitmapMasks(masks, 96, 128))
    item = dict(inputs=dict(img=torch.full((3, 96, 128), 90, dtype=torch.uint8)),
                data_samples=sample)
    picture, panels, drawn_masks = tool.draw_item(visualizer, item, SAMDataPreprocessor())
    assert drawn_masks.shape == (2, 128, 128) and not drawn_masks[1].any()
    assert texts == ['the red circle', 'the pink cube', 'no target']
    label = np.all(panels[1] == NO_TARGET_COLOR, axis=-1)
    assert label.sum() > 100 and not np.all(panels[0] == NO_TARGET_COLOR, axis=-1).any()
    assert picture.shape == (CELL + GAP, 2 * CELL + GAP, 3)  # no multimodal view packed


def test_split_errors_and_cached_train_pipeline(configs, synthref_root, tmp_path):
    tool = load_tool('analysis/browse_dataset')
    with pytest.raises(ValueError, match=r'plain\.py has no test_dataloader\.dataset'):
        tool.main([str(configs['plain']), '--split', 'test', '--out-dir', str(tmp_path),
                   '--cfg-options', 'test_dataloader=None'])
    with pytest.raises(SystemExit):
        tool.main([str(configs['plain']), '--split', 'holdout'])
    # a train pipeline that replaces the image by its cached embedding: browsed without the
    # cache (none exists here), the image drawn; text_mode='random': one draw
    cfg = tiny_cfg(synthref_root, tmp_path / 'work',
                   ROOT / 'configs/evf_sam/evf-tiny-frozen-sam_synthref_cached.py')
    assert 'LoadCachedEmbedding' in [t.type for t in cfg.train_dataloader.dataset.pipeline]
    cfg.dump(str(tmp_path / 'cached.py'))
    written = tool.main([str(tmp_path / 'cached.py'), '--out-dir', str(tmp_path / 'train'),
                         '--num-items', '2', '--not-show'])
    train_items = len(DATASETS.build(cfg.train_dataloader.dataset))
    assert train_items > 2 and len(written) == 2 and all(Path(p).is_file() for p in written)
    assert (tmp_path / 'train' / 'contact_sheet.jpg').is_file()


def test_test_split_browses_each_dataset(configs, tmp_path, capsys):
    """The concatenated test splits: files prefixed by the split. (The script runs as
    ``__main__`` in the docs' walkthrough, test_doc_commands.py.)"""
    out = tmp_path / 'test'
    load_tool('analysis/browse_dataset').main([
        str(configs['plain']), '--split', 'test', '--out-dir', str(out), '--num-items', '1',
        '--not-show'])
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names[0] == 'contact_sheet.jpg' and len(names) == 4
    assert [n.split('_')[:2] for n in names[1:]] == [['testA', '0'], ['testB', '0'],
                                                      ['val', '0']]
    for split in ('val', 'testA', 'testB'):
        assert f'test {split}: 1 of ' in printed
    # one row per split, panels at the test pipeline's 256 pixels
    sheet = mmcv.imread(str(out / 'contact_sheet.jpg'))
    assert sheet.shape == (3 * (256 + GAP) + GAP, 3 * (256 + GAP) + GAP, 3)
