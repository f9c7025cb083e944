"""GReferSegDataset on SynthRef-G (tools/dataset_converters/synthref/grefer.py): every split
loads, a target mask is the union of its annotations (as pycocotools decodes them), a no-target
expression has an empty mask and ``no_target`` True through the SynthRef pipeline, SynthRef-G
has gRefCOCO's mix of expressions and is deterministic, and bad input is named."""
import collections
import json
import pickle
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
from mmdet.datasets.transforms import LoadAnnotations
from mmengine.config import Config
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from mmevf.datasets.transforms import PackReferInputs
from mmevf.registry import DATASETS
from tests.conftest import load_tool
from tools.dataset_converters.synthref.grefer import (absent_expressions, group_expressions,
                                                      make_synthref_g)
from tools.dataset_converters.synthref.generator import shape_polygon

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ('train', 'val', 'testA', 'testB')
REFS = 'grefcoco/grefs(unc).json'


@pytest.fixture(scope='module')
def synthref_g(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('synthref_g') / 'data'
    counts = make_synthref_g(str(root), num_images=12, seed=2)
    assert sum(c['images'] for c in counts.values()) == 12
    return root


def build(root: Path, split: str = 'val', pipeline=(), images: Optional[Path] = None, **kwargs):
    """``GReferSegDataset`` on ``root``; ``images``: an image folder elsewhere (the bad-input
    folders hold only their json files)."""
    init_default_scope('mmevf')
    prefix = dict(img_path=str(images / 'images/train2014')) if images else None
    return DATASETS.build(dict(type='GReferSegDataset', data_root=str(root), split=split,
                               data_prefix=prefix, pipeline=list(pipeline), **kwargs))


def read(root: Path, name: str):
    return json.loads((root / 'grefcoco' / name).read_text())


def write(root: Path, name: str, data) -> None:
    (root / 'grefcoco').mkdir(parents=True, exist_ok=True)
    (root / 'grefcoco' / name).write_text(json.dumps(data))


def expected_mask(ann_ids: List[int], anns: Dict[int, dict], h: int, w: int) -> np.ndarray:
    """(h, w) uint8: the union of the annotations, each decoded by pycocotools on its own."""
    union = np.zeros((h, w), np.uint8)
    for ann_id in ann_ids:
        if ann_id == -1:
            continue
        seg = anns[ann_id]['segmentation']
        rle = (mask_utils.merge(mask_utils.frPyObjects(seg, h, w)) if isinstance(seg, list)
               else mask_utils.frPyObjects(seg, h, w) if isinstance(seg['counts'], list) else seg)
        union |= mask_utils.decode(rle)
    return union


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of an (h, w) mask: run lengths in column-major order, zeros first."""
    flat = mask.flatten(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return dict(size=list(mask.shape), counts=([0] + counts) if flat[0] else counts)


def loaded_masks(info: dict) -> np.ndarray:
    """(N, h, w): the item's masks as mmdet's LoadAnnotations gives them to the pipeline."""
    results = LoadAnnotations(with_bbox=False, with_label=False, with_mask=True)(
        dict(info, ori_shape=(info['height'], info['width'])))
    assert not results['gt_ignore_flags'].any()  # PackDetInputs would drop flagged masks
    return results['gt_masks'].masks


def test_every_split_loads_with_union_and_empty_masks(synthref_g):
    refs = read(synthref_g, 'grefs(unc).json')
    anns = {a['id']: a for a in read(synthref_g, 'instances.json')['annotations']}
    kinds = collections.Counter()
    for split in SPLITS:
        dataset = build(synthref_g, split)
        split_refs = [r for r in refs if r['split'] == split]
        by_text = {(r['image_id'], s['sent']): r for r in split_refs for s in r['sentences']}
        assert len(by_text) == sum(len(r['sentences']) for r in split_refs)  # unique per image
        seen = collections.Counter()
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            h, w = info['height'], info['width']
            assert len(info['text']) == len(info['instances']) == len(info['no_target'])
            for text, no_target, mask in zip(info['text'], info['no_target'], loaded_masks(info)):
                ref = by_text[info['img_id'], text]
                seen[info['img_id'], text] += 1
                assert no_target == ref['no_target'] == (ref['ann_id'] == [-1])
                assert mask.shape == (h, w)
                np.testing.assert_array_equal(mask, expected_mask(ref['ann_id'], anns, h, w))
                assert mask.any() != no_target
                kinds['none' if no_target else 'multi' if len(ref['ann_id']) > 1 else 'one'] += 1
        assert seen == collections.Counter(by_text.keys())  # every sentence once
        assert dataset.num_expressions == len(by_text)
    assert all(kinds[kind] > 0 for kind in ('one', 'multi', 'none')), kinds


def test_pickle_refs_load_as_json(synthref_g, tmp_path):
    with open(tmp_path / 'grefs.p', 'wb') as f:
        pickle.dump(read(synthref_g, 'grefs(unc).json'), f)
    from_json, from_pickle = (build(synthref_g, 'train'),
                              build(synthref_g, 'train', split_file=str(tmp_path / 'grefs.p')))
    assert len(from_json) == len(from_pickle) > 0
    for i in range(len(from_json)):
        assert from_json.get_data_info(i) == from_pickle.get_data_info(i)


def test_rle_union_leaves_out_crowd(synthref_g, tmp_path):
    """Annotations in compressed and uncompressed RLE merge into one RLE; a crowd region named
    with objects is left out (ReLA), a ref of crowd regions only keeps them."""
    refs, coco = read(synthref_g, 'grefs(unc).json'), read(synthref_g, 'instances.json')
    anns = {a['id']: a for a in coco['annotations']}
    images = {i['id']: i for i in coco['images']}
    ref = next(r for r in refs if len(r['ann_id']) > 1)
    image = images[ref['image_id']]
    h, w = image['height'], image['width']
    first, second = (anns[a] for a in ref['ann_id'][:2])
    rle = mask_utils.merge(mask_utils.frPyObjects(first['segmentation'], h, w))
    first['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode('ascii'))
    second['segmentation'] = uncompressed_rle(expected_mask([second['id']], anns, h, w))
    crowd = dict(first, id=10 ** 6, iscrowd=1, segmentation=[[0, 0, w, 0, w, h, 0, h]])
    coco['annotations'].append(crowd)
    named = list(ref['ann_id'])
    ref['ann_id'] = named + [crowd['id']]
    only_crowd = dict(ref, ref_id=10 ** 6, ann_id=[crowd['id']],
                      sentences=[dict(sent='the crowd', raw='the crowd', sent_id=10 ** 6)])
    write(tmp_path, 'instances.json', coco)
    write(tmp_path, 'grefs(unc).json', refs + [only_crowd])
    dataset = build(tmp_path, ref['split'], images=synthref_g)
    info = next(dataset.get_data_info(i) for i in range(len(dataset))
                if dataset.get_data_info(i)['img_id'] == ref['image_id'])
    masks = dict(zip(info['text'], loaded_masks(info)))
    instance = info['instances'][info['text'].index(ref['sentences'][0]['sent'])]
    assert isinstance(instance['mask'], dict) and isinstance(instance['mask']['counts'], str)
    anns = {a['id']: a for a in coco['annotations']}
    np.testing.assert_array_equal(masks[ref['sentences'][0]['sent']],
                                  expected_mask(named, anns, h, w))
    assert masks['the crowd'].all()


def test_group_and_absent_expressions():
    def obj(shape, color, cx):
        return dict(shape=shape, color=color, cx=cx, cy=50.0, r=10.0,
                    polygon=shape_polygon(shape, cx, 50.0, 10.0))

    scene = [obj('circle', 'red', 20), obj('circle', 'red', 60), obj('square', 'blue', 100),
             obj('circle', 'green', 140)]
    groups = group_expressions(scene)
    assert set(groups) == {(0, 1, 3), (0, 1)}
    assert groups[(0, 1, 3)] == ['the three circles', 'all circles', 'every circle']
    # the two red shapes are the two red circles: one ref with both phrasings
    assert {'the two red shapes', 'both red shapes', 'every red circle'} <= set(groups[(0, 1)])
    absent = absent_expressions(scene)
    assert 'the blue circle' in absent and 'all yellow shapes' in absent
    assert not {'the red circle', 'the blue square', 'all red shapes'} & set(absent)


def test_grefcoco_mix_of_expressions(tmp_path):
    counts = make_synthref_g(str(tmp_path), num_images=150, seed=0)
    total = {kind: sum(c[kind] for c in counts.values()) for kind in ('single', 'multi', 'none')}
    n = sum(total.values())
    assert 0.27 < total['multi'] / n < 0.33 and 0.08 < total['none'] / n < 0.12, total
    refs = read(tmp_path, 'grefs(unc).json')
    assert sum(len(r['sentences']) for r in refs) == n
    for split in SPLITS:  # each split holds every kind
        assert min(counts[split][k] for k in ('single', 'multi', 'none')) > 0, counts[split]


def test_deterministic_and_no_overwrite(tmp_path, monkeypatch, capsys):
    # written twice to the same path: the tokenizer model records its training paths
    make_synthref_g(str(tmp_path / 'a'), num_images=6, seed=5)
    (tmp_path / 'a').rename(tmp_path / 'b')
    make_synthref_g(str(tmp_path / 'a'), num_images=6, seed=5)
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*')
                   if p.is_file())
    assert {str(f) for f in files} >= {REFS, 'grefcoco/instances.json',
                                       'tokenizer/sentencepiece.bpe.model',
                                       'bert_tokenizer/vocab.txt'}
    assert len([f for f in files if f.suffix == '.jpg']) == 6
    for f in files:
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes(), f
    make_synthref_g(str(tmp_path / 'c'), num_images=6, seed=6)
    assert (tmp_path / 'c' / REFS).read_bytes() != (tmp_path / 'a' / REFS).read_bytes()

    cli = load_tool('dataset_converters/make_synthref_g')
    monkeypatch.setattr('sys.argv', ['make_synthref_g.py', str(tmp_path / 'a'), '--num-images',
                                     '4', '--seed', '5'])
    with pytest.raises(FileExistsError, match=re.escape(f'{tmp_path / "a"} is not empty')):
        cli.main()
    monkeypatch.setattr('sys.argv', ['make_synthref_g.py', str(tmp_path / 'a'), '--num-images',
                                     '4', '--force'])
    cli.main()
    assert 'SynthRef-G written to' in capsys.readouterr().out
    assert {r['image_id'] for r in read(tmp_path / 'a', 'grefs(unc).json')} == set(range(4))


def _edit(root: Path, case: str) -> Tuple[dict, list, dict]:
    """SynthRef-G's refs and instances broken in ``case``'s way, and the broken ref."""
    refs, coco = read(root, 'grefs(unc).json'), read(root, 'instances.json')
    ref = next(r for r in refs if len(r['ann_id']) > 1)
    if case == 'absent_annotation':
        ref['ann_id'] = ref['ann_id'][:1] + [999999]
    elif case == 'mixed_no_target':
        ref['ann_id'] = [-1] + ref['ann_id']
    elif case == 'no_target_with_objects':
        ref['no_target'] = True
    elif case == 'absent_image':
        ref['image_id'] = 999999
    return ref, refs, coco


@pytest.mark.parametrize('case, message', [
    ('absent_annotation', r'ref {ref} points to annotation\(s\) \[999999\], which .*instances'
     r'\.json does not have'),
    ('mixed_no_target', r'ref {ref} mixes no target \(-1\) with annotations \[-1, '),
    ('no_target_with_objects', r'ref {ref} is marked no_target but lists annotations'),
    ('absent_image', r'ref {ref} is on image 999999, which is not in .*instances\.json'),
])
def test_bad_refs_are_named(synthref_g, tmp_path, case, message):
    ref, refs, coco = _edit(synthref_g, case)
    write(tmp_path, 'grefs(unc).json', refs)
    write(tmp_path, 'instances.json', coco)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / REFS)) + ': '
                       + message.format(ref=ref['ref_id'])):
        build(tmp_path, ref['split'], images=synthref_g)


@pytest.mark.parametrize('missing', ['grefs(unc).json', 'instances.json'])
def test_missing_files_are_named(synthref_g, tmp_path, missing):
    for name in {'grefs(unc).json', 'instances.json'} - {missing}:
        write(tmp_path, name, read(synthref_g, name))
    with pytest.raises(FileNotFoundError,
                       match=re.escape(f'{tmp_path / "grefcoco" / missing} does not exist')):
        build(tmp_path, 'val', images=synthref_g)


def synthref_pipeline(name: str, tokenizer: Path) -> list:
    """A pipeline of configs/_base_/datasets/synthref.py with the tokenizer of ``tokenizer``."""
    pipeline = Config.fromfile(str(ROOT / 'configs/_base_/datasets/synthref.py'))[name]
    for step in pipeline:
        if step['type'] == 'TokenizeText':
            step['tokenizer'] = str(tokenizer)
    return pipeline


def test_synthref_pipeline_packs_no_target(synthref_g):
    tokenizer = synthref_g / 'tokenizer'
    dataset = build(synthref_g, 'train', synthref_pipeline('test_pipeline', tokenizer))
    packed_no_target = []
    for i in range(len(dataset)):
        info, sample = dataset.get_data_info(i), dataset[i]['data_samples']
        masks = sample.gt_instances.masks.masks
        assert sample.no_target == info['no_target'] and sample.text == info['text']
        assert masks.shape == (len(info['text']), info['height'], info['width'])
        assert [not m.any() for m in masks] == info['no_target']
        packed_no_target += sample.no_target
    assert any(packed_no_target) and not all(packed_no_target)

    # training: fresh draws, each text with its own ref's flag and mask
    train = build(synthref_g, 'train', synthref_pipeline('train_pipeline', tokenizer),
                  text_mode='random', num_sentences=1, max_expressions=3)
    for i in range(len(train)):
        refs = {s: r for r in train.get_data_info(i)['refs'] for s in r['sentences']}
        sample = train[i]['data_samples']
        assert 0 < len(sample.text) <= 3 and len(sample.no_target) == len(sample.text)
        for text, no_target, mask in zip(sample.text, sample.no_target,
                                         sample.gt_instances.masks.masks):
            assert no_target == refs[text]['no_target'] == (not mask.any())

    # other datasets' samples get no no_target
    plain = PackReferInputs()(dict(img=np.zeros((8, 8, 3), np.uint8), img_id=0, text=['a']))
    assert 'no_target' not in plain['data_samples']
