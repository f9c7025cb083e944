"""MapillaryReferDataset on the synthetic Mapillary Vistas v2.0 twin (palette PNGs in mmseg's
layout): masks equal a PIL decode, names are mmseg's lower-cased, 'Unlabeled' is never a
prompt, bad label values name the file; BaseSemanticReferDataset with classes from the config."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import DATASETS, init_default_scope
from mmseg.datasets import MapillaryDataset_v2
from PIL import Image
from pycocotools import mask as mask_utils

import mmevf.datasets  # noqa: F401
from tests.conftest import load_tool

NAMES = MapillaryDataset_v2.METAINFO['classes']
UNLABELED = NAMES.index('Unlabeled')


@pytest.fixture(scope='module')
def mapillary_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('mapillary')
    load_tool('dataset_converters/make_synthetic_mapillary').make_synthetic_mapillary(str(out))
    return out


def build(cfg: dict):
    init_default_scope('mmevf')
    return DATASETS.build(dict(pipeline=[], **cfg))


def hand_decode(png: str) -> dict:
    raw = np.array(Image.open(png))
    return {f'[semantic] {NAMES[v].lower()}': raw == v for v in np.unique(raw) if v != UNLABELED}


def decoded(info: dict) -> dict:
    return {text: mask_utils.decode(inst['mask']).astype(bool)
            for text, inst in zip(info['text'], info['instances'])}


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_masks_equal_pil_decode(mapillary_root, split):
    dataset = build(dict(type='MapillaryReferDataset', data_root=str(mapillary_root),
                         data_prefix=dict(img_path=f'{split}/images',
                                          seg_map_path=f'{split}/v2.0/labels')))
    pngs = sorted((mapillary_root / split / 'v2.0/labels').glob('*.png'))
    assert len(dataset) == len(pngs) > 0
    assert Image.open(pngs[0]).mode == 'P'  # the released palette PNGs
    for i, png in enumerate(pngs):
        info = dataset.get_data_info(i)
        assert info['seg_map_path'] == str(png)
        expected = hand_decode(str(png))
        got = decoded(info)
        assert list(got) == list(expected)  # every class present, in class order
        for text in expected:
            np.testing.assert_array_equal(got[text], expected[text])
        assert [inst['bbox_label'] for inst in info['instances']] == \
            [NAMES.index(next(n for n in NAMES if n.lower() == t[len('[semantic] '):]))
             for t in info['text']]
        assert '[semantic] unlabeled' not in info['text']
    # the scenes do contain unlabelled pixels, which no mask covers
    raw = np.array(Image.open(pngs[0]))
    covered = np.any([m for m in decoded(dataset.get_data_info(0)).values()], axis=0)
    assert (raw == UNLABELED).any() and not covered[raw == UNLABELED].any()
    assert covered[raw != UNLABELED].all()


def test_names_are_mmseg_lower_cased(mapillary_root):
    dataset = build(dict(type='MapillaryReferDataset', data_root=str(mapillary_root)))
    texts = {t for i in range(len(dataset)) for t in dataset.get_data_info(i)['text']}
    assert '[semantic] street light' in texts or '[semantic] traffic cone' in texts
    assert all(t == t.lower() for t in texts)


def test_random_mode_draws_at_most_three(mapillary_root):
    dataset = build(dict(type='MapillaryReferDataset', data_root=str(mapillary_root),
                         text_mode='random', max_expressions=3))
    for i in range(len(dataset)):
        item = dataset[i]
        assert 1 <= len(item['text']) <= 3
        assert '[semantic] unlabeled' not in item['text']


def test_label_value_outside_classes_names_file(mapillary_root, tmp_path):
    root = tmp_path / 'bad'
    shutil.copytree(mapillary_root, root)
    png = sorted((root / 'training/v2.0/labels').glob('*.png'))[1]
    raw = np.array(Image.open(png))
    raw[0, 0] = len(NAMES)  # 124: one past 'Unlabeled'
    Image.fromarray(raw).save(png)
    with pytest.raises(ValueError, match=rf'{png.name}.*\[124\].*\[0, 123\]'):
        build(dict(type='MapillaryReferDataset', data_root=str(root)))


def test_unknown_ignore_class_refused(mapillary_root):
    with pytest.raises(ValueError, match='ignore_classes.*Void'):
        build(dict(type='MapillaryReferDataset', data_root=str(mapillary_root),
                   ignore_classes=('Void', )))


def test_base_dataset_takes_classes_from_config(tmp_path):
    root = tmp_path / 'shapes'
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    label = np.zeros((8, 10), np.uint8)
    label[1:4, 1:4] = 1
    label[5:7, 2:9] = 3
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / 'images/a.jpg')
    Image.fromarray(label).save(root / 'annotations/a.png')
    classes = ('circle', 'Square', 'triangle')
    dataset = build(dict(type='BaseSemanticReferDataset', data_root=str(root),
                         metainfo=dict(classes=classes), reduce_zero_label=True))
    info = dataset.get_data_info(0)
    assert info['text'] == ['[semantic] circle', '[semantic] triangle']
    got = decoded(info)
    np.testing.assert_array_equal(got['[semantic] circle'], label == 1)
    np.testing.assert_array_equal(got['[semantic] triangle'], label == 3)
    with pytest.raises(ValueError, match='needs class names'):
        build(dict(type='BaseSemanticReferDataset', data_root=str(root)))
