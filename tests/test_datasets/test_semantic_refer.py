"""SemanticReferDataset on the synthetic ADE20K twin: `[semantic] {class}` texts whose masks
are exactly the class's pixels of the label PNG, every class in evaluation, fresh draws of at
most `max_expressions` in training, clear errors naming bad files, and the refer pipeline."""
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, init_default_scope
from mmengine.structures import InstanceData
from mmseg.datasets import ADE20KDataset
from PIL import Image
from pycocotools import mask as mask_utils

import mmevf.datasets  # noqa: F401
from mmevf.evaluation import ReferSegMetric
from tests.conftest import load_tool

NAMES = [name.strip() for name in ADE20KDataset.METAINFO['classes']]
SPLITS = {'training': 6, 'validation': 3}


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('ade')
    load_tool('dataset_converters/make_synthetic_ade20k').make_synthetic_ade20k(str(out))
    return out / 'ADEChallengeData2016'


def ade_cfg(root: Path, split: str = 'validation', pipeline=(), **kwargs) -> dict:
    return dict(type='SemanticReferDataset', data_root=str(root),
                data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
                pipeline=list(pipeline), **kwargs)


def build(cfg: dict):
    init_default_scope('mmevf')
    return DATASETS.build(cfg)


def hand_decode(png: str) -> dict:
    """{text: (H, W) bool mask} of a raw ADE20K label PNG, read with PIL: k -> class k - 1."""
    raw = np.array(Image.open(png))
    return {f'[semantic] {NAMES[v - 1]}': raw == v for v in np.unique(raw) if v != 0}


def decoded(info: dict) -> dict:
    return {text: mask_utils.decode(inst['mask']).astype(bool)
            for text, inst in zip(info['text'], info['instances'])}


def test_generator_is_deterministic(tmp_path):
    make = load_tool('dataset_converters/make_synthetic_ade20k').make_synthetic_ade20k
    assert make(str(tmp_path / 'a'), seed=3) == SPLITS
    make(str(tmp_path / 'b'), seed=3)
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*.*'))
    assert len(files) == 2 * sum(SPLITS.values())
    for f in files:
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes()
    raw = np.array(Image.open(tmp_path / 'a' / 'ADEChallengeData2016' / 'annotations' /
                              'training' / 'ADE_train_00000001.png'))
    assert raw.ndim == 2 and raw.dtype == np.uint8 and 0 in raw and raw.max() <= 150


@pytest.mark.parametrize('split', list(SPLITS))
def test_eval_lists_every_class_with_its_pixels(ade_root, split):
    dataset = build(ade_cfg(ade_root, split))
    assert len(dataset) == SPLITS[split]
    seen_bed = False
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        expected = hand_decode(info['seg_map_path'])
        got = decoded(info)
        assert info['text'] == list(expected)  # every class present, by class index
        for text, mask in expected.items():
            np.testing.assert_array_equal(got[text], mask)
        # raw 0 is ignored: no expression, and its pixels are in no mask
        raw = np.array(Image.open(info['seg_map_path']))
        assert not np.logical_or.reduce(list(got.values()))[raw == 0].any()
        assert (info['height'], info['width']) == raw.shape
        assert [inst['bbox_label'] for inst in info['instances']] == \
            [NAMES.index(t[len('[semantic] '):]) for t in info['text']]
        assert info['img_id'] == Path(info['img_path']).stem
        seen_bed |= '[semantic] bed' in info['text']  # mmseg's 'bed ' stripped
    assert dataset.num_expressions == sum(
        len(dataset.get_data_info(i)['text']) for i in range(len(dataset)))
    if split == 'training':
        assert seen_bed


def test_training_draws_fresh_classes_up_to_max(ade_root):
    dataset = build(ade_cfg(ade_root, 'training', text_mode='random', max_expressions=2))
    random.seed(0)
    draws = set()
    for i in range(len(dataset)):
        expected = hand_decode(dataset.get_data_info(i)['seg_map_path'])
        for _ in range(6):
            item = dataset[i]
            assert 1 <= len(item['text']) <= min(2, len(expected))
            assert len(set(item['text'])) == len(item['text'])
            for text, mask in decoded(item).items():
                np.testing.assert_array_equal(mask, expected[text])
            draws.add((i, tuple(item['text'])))
    assert len(draws) > len(dataset)  # the draw changes between reads
    unlimited = build(ade_cfg(ade_root, 'training', text_mode='random'))
    assert unlimited[0]['text'] == list(hand_decode(unlimited.get_data_info(0)['seg_map_path']))


def copy_split(ade_root: Path, dst: Path, split: str = 'validation') -> Path:
    for kind in ('images', 'annotations'):
        shutil.copytree(ade_root / kind / split, dst / kind / split)
    return dst


@pytest.mark.parametrize('bad_value', [151, 255])
def test_label_value_outside_the_classes_names_the_png(ade_root, tmp_path, bad_value):
    root = copy_split(ade_root, tmp_path)
    png = root / 'annotations' / 'validation' / 'ADE_val_00000002.png'
    raw = np.array(Image.open(png))
    raw[0, 0] = bad_value
    Image.fromarray(raw).save(png)
    with pytest.raises(ValueError, match=rf'ADE_val_00000002\.png.*\[{bad_value}\]'):
        build(ade_cfg(root))
    # training mode reads the PNG per item: the error comes at that read
    dataset = build(ade_cfg(root, text_mode='random', max_expressions=3))
    with pytest.raises(ValueError, match=r'ADE_val_00000002\.png'):
        dataset[1]


def test_missing_files_are_named(ade_root, tmp_path):
    root = copy_split(ade_root, tmp_path)
    (root / 'split.txt').write_text('ADE_val_00000001\nADE_val_00000009\n')
    with pytest.raises(FileNotFoundError, match=r'image .*ADE_val_00000009\.jpg'):
        build(ade_cfg(root, ann_file='split.txt'))
    (root / 'annotations' / 'validation' / 'ADE_val_00000003.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'label map .*ADE_val_00000003\.png'):
        build(ade_cfg(root))


def test_unlabelled_image_dropped_in_eval_refetched_in_training(ade_root, tmp_path):
    root = copy_split(ade_root, tmp_path)
    png = root / 'annotations' / 'validation' / 'ADE_val_00000001.png'
    Image.fromarray(np.zeros_like(np.array(Image.open(png)))).save(png)
    dataset = build(ade_cfg(root))
    assert [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))] == \
        ['ADE_val_00000002', 'ADE_val_00000003']
    training = build(ade_cfg(root, text_mode='random', max_expressions=3))
    assert training.prepare_data(0) is None
    assert training[0]['img_id'] != 'ADE_val_00000001'  # BaseDataset fetched another image


def test_pipeline_yields_a_sample_refer_seg_metric_scores(ade_root, xlmr_tokenizer_dir):
    pipeline = [  # configs/_base_/datasets/synthref.py's test pipeline
        dict(type='LoadImageFromFile'),
        dict(type='SAMResize', sam_size=128, mm_size=32),
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
        dict(type='TokenizeText', tokenizer=str(xlmr_tokenizer_dir)),
        dict(type='PackReferInputs'),
    ]
    dataset = build(ade_cfg(ade_root, pipeline=pipeline))
    info = dataset.get_data_info(0)
    packed = dataset[0]
    data_sample = packed['data_samples']
    masks = data_sample.gt_instances.masks.masks
    assert masks.shape == (len(info['text']), info['height'], info['width'])
    np.testing.assert_array_equal(masks.astype(bool),
                                  np.stack(list(hand_decode(info['seg_map_path']).values())))
    assert data_sample.text == info['text'] and len(data_sample.text_ids) == len(info['text'])
    assert max(packed['inputs']['img'].shape[1:]) == 128
    assert tuple(packed['inputs']['mm_img'].shape) == (3, 32, 32)

    # a perfect prediction scores 100; an empty one 0
    metric = ReferSegMetric(metric=('cIoU', 'gIoU'))
    data_sample.pred_instances = InstanceData(masks=torch.from_numpy(masks).bool())
    metric.process({}, [data_sample.to_dict()])
    assert metric.compute_metrics(metric.results) == {'cIoU': 100.0, 'gIoU': 100.0}
    metric = ReferSegMetric(metric=('cIoU', ))
    data_sample.pred_instances = InstanceData(masks=torch.zeros(masks.shape, dtype=torch.bool))
    metric.process({}, [data_sample.to_dict()])
    assert metric.compute_metrics(metric.results) == {'cIoU': 0.0}


def test_bad_arguments():
    with pytest.raises(ValueError, match='text_mode'):
        build(dict(type='SemanticReferDataset', text_mode='concat', lazy_init=True))
    with pytest.raises(ValueError, match='max_expressions'):
        build(dict(type='SemanticReferDataset', max_expressions=0, lazy_init=True))
