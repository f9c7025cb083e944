"""ReferSegDataset on SynthRef: every sentence scored once in evaluation, fresh sentences in
training, the mmdet pipeline in the right scope, and clear refusals of bad input."""
import collections
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import DATASETS, init_default_scope
from pycocotools import mask as mask_utils

import mmevf.datasets  # noqa: F401
from mmevf.datasets.utils import load_refs_pickle
from tests.conftest import synthref_dataset_cfg


def build(cfg: dict):
    init_default_scope('mmevf')
    return DATASETS.build(cfg)


def split_sentences(root: Path, split: str) -> collections.Counter:
    refs = load_refs_pickle(str(root / 'synthref' / 'refs(unc).p'))
    return collections.Counter((r['image_id'], s['sent']) for r in refs if r['split'] == split
                               for s in r['sentences'])


@pytest.mark.parametrize('split', ['val', 'testA', 'testB'])
def test_eval_scores_every_sentence_once(synthref_root, split):
    dataset = build(synthref_dataset_cfg(synthref_root, split))
    seen = collections.Counter()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        assert len(info['text']) == len(info['instances'])
        seen.update((info['img_id'], text) for text in info['text'])
    assert seen == split_sentences(synthref_root, split)
    assert dataset.num_expressions == sum(seen.values())


def test_pipeline_packs_one_original_size_mask_per_expression(synthref_root, xlmr_tokenizer_dir):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='SAMResize', sam_size=128, mm_size=32),
        # mmdet's transforms carry their scope: in scope mmevf a bare 'LoadAnnotations' is mmcv's
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
        dict(type='TokenizeText', tokenizer=str(xlmr_tokenizer_dir)),
        dict(type='PackReferInputs'),
    ]
    dataset = build(synthref_dataset_cfg(synthref_root, 'val', pipeline))
    info = dataset.get_data_info(0)
    sample = dataset[0]
    data_sample = sample['data_samples']
    h, w = info['height'], info['width']
    masks = data_sample.gt_instances.masks.masks
    assert masks.shape == (len(info['text']), h, w)
    assert data_sample.text == info['text'] and len(data_sample.text_ids) == len(info['text'])
    assert max(sample['inputs']['img'].shape[1:]) == 128
    for mask, instance in zip(masks, info['instances']):
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(instance['mask'], h, w)))
        np.testing.assert_array_equal(mask, expected)


def test_training_draws_fresh_sentences(synthref_root):
    dataset = build(synthref_dataset_cfg(
        synthref_root, 'train', text_mode='random', num_sentences=None, max_expressions=3))
    index = max(range(len(dataset)),
                key=lambda i: sum(len(r['sentences']) for r in dataset.get_data_info(i)['refs']))
    random.seed(0)
    draws = {tuple(dataset[index]['text']) for _ in range(30)}
    assert len(draws) > 1
    assert all(len(d) == 3 for d in draws)
    one_each = build(synthref_dataset_cfg(synthref_root, 'train', text_mode='random'))
    refs = one_each.get_data_info(index)['refs']
    texts = one_each[index]['text']
    assert len(texts) == len(refs)
    assert all(text in ref['sentences'] for text, ref in zip(texts, refs))


class _Payload:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_refs_pickle_with_code_is_refused(synthref_root, tmp_path):
    root = tmp_path / 'evil'
    shutil.copytree(synthref_root, root)
    marker = tmp_path / 'pwned'
    with open(root / 'synthref' / 'refs(unc).p', 'wb') as f:
        pickle.dump([{'ref_id': 0, 'payload': _Payload(marker)}], f)
    with pytest.raises(ValueError, match=r'refs\(unc\).p is not a refs pickle.*posix.system'):
        build(synthref_dataset_cfg(root, 'val'))
    assert not marker.exists()


def edit_refs(root: Path, edit) -> None:
    path = root / 'synthref' / 'refs(unc).p'
    refs = load_refs_pickle(str(path))
    edit(refs)
    with open(path, 'wb') as f:
        pickle.dump(refs, f)


def val_refs(refs):
    return [r for r in refs if r['split'] == 'val']


@pytest.mark.parametrize('case, error, message', [
    ('missing_image', FileNotFoundError, r'synthref_\d+.jpg \(image id \d+\) does not exist'),
    ('absent_annotation', ValueError, r'ref \d+ points to annotation 999999'),
    ('no_sentence', ValueError, r'ref \d+ has no sentence'),
    ('missing_ann_file', FileNotFoundError, r'instances.json does not exist'),
])
def test_bad_input_is_named(synthref_root, tmp_path, case, error, message):
    root = tmp_path / case
    shutil.copytree(synthref_root, root)
    if case == 'missing_image':
        image_id = val_refs(load_refs_pickle(str(root / 'synthref' / 'refs(unc).p')))[0]['image_id']
        (root / 'images' / f'synthref_{image_id:06d}.jpg').unlink()
    elif case == 'absent_annotation':
        edit_refs(root, lambda refs: val_refs(refs)[0].update(ann_id=999999))
    elif case == 'no_sentence':
        edit_refs(root, lambda refs: val_refs(refs)[0].update(sentences=[]))
    else:
        (root / 'synthref' / 'instances.json').unlink()
    with pytest.raises(error, match=message):
        build(synthref_dataset_cfg(root, 'val'))
