"""TextAwareRandomFlip flips image, masks and the words left/right together, so flipped
SynthRef expressions still single out their object."""
import numpy as np
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

from mmevf.datasets import ReferSegDataset
from mmevf.datasets.transforms import swap_left_right
from tests.conftest import synthref_dataset_cfg


def test_word_forms():
    assert swap_left_right('the man left of the rightmost car') == \
        'the man right of the leftmost car'
    assert swap_left_right('Left-hand guy, lefthand zebra, leftwards dog') == \
        'Right-hand guy, righthand zebra, rightwards dog'
    assert swap_left_right('bright light, alright, copyright') == 'bright light, alright, copyright'


def centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def target_shape(text: str) -> str:
    """SynthRef names its target's shape first ("the circle left of the blue square")."""
    return next(w for w in text.split() if w in ('circle', 'square', 'triangle'))


def test_flip_keeps_expressions_true(synthref_root):
    init_default_scope('mmevf')
    cfg = synthref_dataset_cfg(synthref_root, 'train')
    cfg.pop('type')
    dataset = ReferSegDataset(**cfg)
    load = Compose([dict(type='LoadImageFromFile'),
                    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False,
                         with_label=False)])
    flip = Compose([dict(type='TextAwareRandomFlip', prob=1.0)])
    checked = 0
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        original = load(info)
        image, masks, texts = original['img'].copy(), original['gt_masks'].masks.copy(), \
            list(original['text'])
        flipped = flip(original)
        assert flipped['flip'] and flipped['flip_direction'] == 'horizontal'
        np.testing.assert_array_equal(flipped['img'], image[:, ::-1])
        np.testing.assert_array_equal(flipped['gt_masks'].masks, masks[:, :, ::-1])
        assert flipped['text'] == [swap_left_right(t) for t in texts]
        # the flipped "the leftmost circle" is the rightmost circle's mask, and vice versa
        all_masks = flipped['gt_masks'].masks
        for text, mask in zip(flipped['text'], all_masks):
            words = text.split()
            if words[1] in ('leftmost', 'rightmost'):
                same_shape = [m for t, m in zip(flipped['text'], all_masks)
                              if target_shape(t) == words[-1]]
                xs = [centroid_x(m) for m in same_shape]
                extreme = min(xs) if words[1] == 'leftmost' else max(xs)
                assert centroid_x(mask) == extreme
                checked += 1
    assert checked > 5
