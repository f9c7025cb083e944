"""ReferSegVisualizer's pictures (legend colours, the IoU written, upscaling) and the contact
sheet ReferSegVisualizationHook writes at the end of a test run."""
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from mmevf.engine.hooks import ReferSegVisualizationHook
from mmevf.engine.hooks.visualization_hook import distinct_objects_first
from mmevf.visualization import ReferSegVisualizer
from mmevf.visualization.refer_seg_visualizer import (BOX_COLOR, GT_COLOR, POINT_COLORS,
                                                      PRED_COLOR, make_contact_sheet, mask_iou)


def grey(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 110, np.uint8)


def box(y0: int, y1: int, x0: int, x1: int, shape=(160, 256)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def count(picture: np.ndarray, color) -> int:
    return int(np.all(picture == np.array(color, np.uint8), axis=-1).sum())


@pytest.fixture
def visualizer(request) -> ReferSegVisualizer:
    # visualizers are per-process singletons by name
    return ReferSegVisualizer(name=f'vis_{request.node.name}', min_long_side=512)


def test_legend_colours_and_iou_written(visualizer, monkeypatch):
    texts = []
    draw_texts = visualizer.draw_texts
    monkeypatch.setattr(visualizer, 'draw_texts',
                        lambda t, *a, **k: (texts.append(t), draw_texts(t, *a, **k))[1])
    gt = box(50, 120, 40, 110)     # 70 x 70 = 4900 px
    pred = box(60, 130, 60, 120)   # 70 x 60 = 4200 px; overlap 60 x 50 = 3000
    # IoU = 3000 / (4900 + 4200 - 3000) = 0.4918...
    assert mask_iou(pred, gt) == pytest.approx(3000 / 6100)
    picture = visualizer.draw_expression(grey(160, 256), 'the red circle', pred, gt)
    assert picture.shape == (320, 512, 3)  # upscaled: long side 512
    assert texts[0] == 'the red circle\nIoU 0.49'
    assert texts[1] == ['prediction', 'ground truth']
    # legend swatches in the bottom-left corner, exact colours, one per label
    corner = picture[-80:, :40]
    assert count(corner, PRED_COLOR) >= 15 * 15 and count(corner, GT_COLOR) >= 15 * 15
    # the ground truth is outlined (its colour inside the image, not only in the legend) and
    # the prediction's fill is a blend: no exact PRED_COLOR outside the legend
    assert count(picture[:-80], GT_COLOR) >= 140 ** 2 - 136 ** 2  # a 2-px band, 140 px box
    assert count(picture[:-80], PRED_COLOR) == 0


def test_without_ground_truth_no_iou_and_one_legend_entry(visualizer, monkeypatch):
    texts = []
    draw_texts = visualizer.draw_texts
    monkeypatch.setattr(visualizer, 'draw_texts',
                        lambda t, *a, **k: (texts.append(t), draw_texts(t, *a, **k))[1])
    picture = visualizer.draw_expression(grey(160, 256), 'blue square', box(0, 10, 0, 10))
    assert texts == ['blue square', ['prediction']]
    assert count(picture, GT_COLOR) == 0 and count(picture[-80:, :40], PRED_COLOR) > 0


def test_upscaling_only_small_images(request):
    keep = ReferSegVisualizer(name=f'keep_{request.node.name}')  # the inferencer's default
    assert keep.draw_expression(grey(160, 256), 'x', box(0, 5, 0, 5)).shape == (160, 256, 3)
    big = ReferSegVisualizer(name=f'big_{request.node.name}', min_long_side=512)
    mask = np.zeros((600, 300), bool)
    assert big.draw_expression(grey(600, 300), 'x', mask, mask).shape == (600, 300, 3)
    assert big.draw_expression(grey(256, 192), 'x').shape == (512, 384, 3)


def test_point_and_box_prompts_drawn(visualizer):
    """An expression's prompts from its data sample: foreground points green, background red
    (each ringed in white), the box's outline yellow, at the upscaled positions, under the
    caption; an expression without prompts gets none of these colours."""
    sample = DetDataSample(metainfo=dict(text=['box + 2 points', 'text only']))
    sample.pred_instances = InstanceData(masks=torch.zeros(2, 160, 256, dtype=torch.bool))
    sample.prompt_points = [torch.tensor([[40., 30.], [200., 120.]], dtype=torch.float64), None]
    sample.prompt_point_labels = [torch.tensor([1, 0]), None]
    sample.prompt_boxes = [torch.tensor([100., 50., 180., 140.], dtype=torch.float64), None]
    visualizer.add_datasample('img', grey(160, 256), sample, draw_gt=False)
    picture, plain = visualizer.drawings  # upscaled x2 (long side 512)
    assert picture.shape == (320, 512, 3)
    assert tuple(picture[60, 80]) == POINT_COLORS[1]  # (40, 30) x 2
    assert tuple(picture[240, 400]) == POINT_COLORS[0]
    assert count(picture[50:70, 70:90], POINT_COLORS[1]) >= 100  # a disc, not a dot
    assert (picture[60, 66:74] >= 240).all(-1).any()  # its white ring, left of it
    for y, x in ((100, 280), (280, 280), (190, 200), (190, 360)):  # the box's four sides
        assert count(picture[y - 2:y + 3, x - 2:x + 3], BOX_COLOR) > 0, (y, x)
    assert count(picture[110:270, 210:350], BOX_COLOR) == 0  # an outline, not filled
    for color in (*POINT_COLORS.values(), BOX_COLOR):
        assert count(plain, color) == 0


def test_both_empty_masks_iou_one():
    empty = np.zeros((4, 4), bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, box(0, 1, 0, 1, (4, 4))) == 0.0


def test_contact_sheet_grid_shape_and_cells():
    a = np.full((10, 20, 3), 1, np.uint8)
    b = np.full((12, 16, 3), 2, np.uint8)
    sheet = make_contact_sheet([[a, b, a], [b]], gap=3)
    # cells 12 x 20 (the largest), 2 rows x 3 columns, 3-pixel gaps around them
    assert sheet.shape == (2 * 12 + 3 * 3, 3 * 20 + 4 * 3, 3)
    assert (sheet[3:13, 3:23] == 1).all() and (sheet[3:15, 26:42] == 2).all()
    assert (sheet[18:30, 26:] == 255).all()  # the short row leaves white
    with pytest.raises(ValueError):
        make_contact_sheet([[]])


def test_distinct_objects_first():
    a, b = box(0, 4, 0, 4, (8, 8)), box(4, 8, 4, 8, (8, 8))
    assert distinct_objects_first(np.stack([a, a, b, a]), 3) == [0, 2, 1]
    assert distinct_objects_first(None, 2) == [0, 1]


def data_sample(path: str, texts, preds, gts) -> DetDataSample:
    h, w = gts[0].shape
    sample = DetDataSample(metainfo=dict(img_path=path, text=list(texts),
                                         gt_masks=BitmapMasks(np.stack(gts).astype(np.uint8),
                                                              h, w)))
    sample.pred_instances = InstanceData(masks=torch.from_numpy(np.stack(preds)))
    return sample


def test_hook_writes_contact_sheet_of_drawn_pictures(tmp_path, request):
    # built as a runner builds it: the hook finds it as the current instance
    visualizer = ReferSegVisualizer.get_instance(f'hook_{request.node.name}')
    samples = []
    a, b, c = box(0, 40, 0, 40), box(80, 140, 100, 200), box(10, 50, 200, 250)
    for k in range(5):  # 5 images, the sheet keeps 4
        path = str(tmp_path / f'img_{k}.jpg')
        mmcv.imwrite(grey(160, 256), path)
        if k == 0:  # 4 expressions, two of object a: the sheet shows a, b, c
            samples.append(data_sample(path, ['a', 'a too', 'b', 'c'], [a, a, b, c],
                                       [a, a, b, c]))
        else:
            samples.append(data_sample(path, ['a', 'b'], [a, b], [a, b]))
    runner = SimpleNamespace(work_dir=str(tmp_path / 'work'), timestamp='ts',
                             logger=MMLogger.get_instance(f'log_{request.node.name}'))
    hook = ReferSegVisualizationHook(draw=True, test_out_dir='vis')
    hook.before_test(runner)
    hook.after_test_iter(runner, 0, {}, samples[:3])
    hook.after_test_iter(runner, 1, {}, samples[3:])
    hook.after_test_epoch(runner, {})
    assert visualizer.min_long_side is None  # restored after drawing

    vis = tmp_path / 'work' / 'ts' / 'vis'
    sheet = mmcv.imread(str(tmp_path / 'work' / 'ts' / 'contact_sheet.png'), channel_order='rgb')
    gap, cell_h, cell_w = 8, 320, 512  # pictures upscaled to a 512 long side
    assert sheet.shape == (4 * cell_h + 5 * gap, 3 * cell_w + 4 * gap, 3)
    # row 0: expressions 0, 2, 3 of image 0 (one per object); row 3: image 3's two pictures
    for (row, col), name in {(0, 0): 'img_0_0', (0, 1): 'img_0_2', (0, 2): 'img_0_3',
                             (3, 1): 'img_3_1'}.items():
        picture = mmcv.imread(str(vis / f'{name}.png'), channel_order='rgb')
        assert picture.shape == (cell_h, cell_w, 3)
        y, x = gap + row * (cell_h + gap), gap + col * (cell_w + gap)
        assert np.array_equal(sheet[y:y + cell_h, x:x + cell_w], picture)
    assert (sheet[gap + 3 * (cell_h + gap):, -cell_w:] == 255).all()  # 2 expressions only
    assert len(list(vis.glob('*.png'))) == 4 + 4 * 2
