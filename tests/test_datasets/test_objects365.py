"""ObjectsInstanceDataset and filter_objects365.py on a small generated COCO json: bare
category names, masks equal to pycocotools' decodes (polygons, compressed / uncompressed /
list-wrapped RLE), the single-instance-per-category rule, fresh draws of at most
``max_expressions`` in training, the converter's output, and errors naming the file."""
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import DATASETS, init_default_scope
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import mmevf.datasets  # noqa: F401
from tests.conftest import ROOT, load_tool

H, W = 20, 30


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def rle_str(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(size=rle['size'], counts=rle['counts'].decode('ascii'))


def uncompressed(mask: np.ndarray) -> dict:
    """Column-major run lengths starting with zeros, COCO's uncompressed RLE."""
    flat = mask.flatten(order='F')
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return dict(size=[H, W], counts=counts)


def poly(x0: int, y0: int, x1: int, y1: int) -> list:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def make_coco() -> dict:
    """Image 1: cat (polygon), dog (compressed RLE), two persons (excluded), car
    (uncompressed RLE), bus (list-wrapped RLE as in Objects365) -> 4 eligible.
    Image 2: two persons only -> dropped. Image 3: cat (two polygons) and a person next to a
    crowd of persons -> only the cat."""
    anns = [
        (1, 1, 1, poly(1, 1, 8, 6), 0),
        (2, 1, 2, rle_str(box(10, 2, 16, 9)), 0),
        (3, 1, 3, poly(2, 10, 6, 18), 0),
        (4, 1, 3, poly(8, 10, 12, 18), 0),
        (5, 1, 4, uncompressed(box(20, 3, 28, 12)), 0),
        (6, 1, 5, [rle_str(box(15, 12, 29, 19))], 0),
        (7, 2, 3, poly(1, 1, 5, 5), 0),
        (8, 2, 3, poly(10, 1, 15, 5), 0),
        (9, 3, 1, poly(1, 1, 4, 4) + poly(6, 6, 9, 9), 0),
        (10, 3, 3, poly(12, 2, 16, 10), 0),
        (11, 3, 3, rle_str(box(18, 2, 28, 15)), 1),
    ]
    return dict(
        info=dict(description='tiny objects365'),
        images=[dict(id=i, file_name=f'obj365_{i:03d}.jpg', height=H, width=W) for i in (1, 2, 3)],
        annotations=[dict(id=a, image_id=i, category_id=c, segmentation=s, iscrowd=crowd,
                          area=1.0, bbox=[0, 0, 1, 1]) for a, i, c, s, crowd in anns],
        categories=[dict(id=c, name=n) for c, n in
                    ((1, 'cat'), (2, 'dog '), (3, 'person'), (4, 'car'), (5, 'bus'))])


ELIGIBLE = {1: [1, 2, 5, 6], 3: [9]}  # image id -> annotation ids, in json order
NAMES = {1: 'cat', 2: 'dog', 3: 'person', 4: 'car', 5: 'bus'}


@pytest.fixture
def o365_root(tmp_path) -> Path:
    (tmp_path / 'images').mkdir()
    for i in (1, 2, 3):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(
            tmp_path / 'images' / f'obj365_{i:03d}.jpg')
    (tmp_path / 'ann.json').write_text(json.dumps(make_coco()))
    return tmp_path


def build(root: Path, ann_file: str = 'ann.json', pipeline=(), **kwargs):
    init_default_scope('mmevf')
    return DATASETS.build(dict(type='ObjectsInstanceDataset', data_root=str(root),
                               ann_file=ann_file, data_prefix=dict(img_path='images'),
                               pipeline=list(pipeline), **kwargs))


def expected_masks(root: Path) -> dict:
    """{annotation id: mask} decoded by pycocotools' own ``annToMask`` (list-wrapped RLE
    unwrapped first, as the official code reads ``segmentation[0]``)."""
    coco = COCO(str(root / 'ann.json'))
    masks = {}
    for ann in coco.dataset['annotations']:
        segm = ann['segmentation']
        if isinstance(segm, list) and isinstance(segm[0], dict):
            ann = dict(ann, segmentation=segm[0])
        masks[ann['id']] = coco.annToMask(ann)
    return masks


def test_eval_lists_eligible_instances_with_pycocotools_masks(o365_root):
    dataset = build(o365_root)
    masks = expected_masks(o365_root)
    assert len(dataset) == 2 and dataset.num_expressions == 5
    assert dataset.metainfo['classes'] == ('cat', 'dog', 'person', 'car', 'bus')
    for i, (image_id, ann_ids) in enumerate(ELIGIBLE.items()):
        info = dataset.get_data_info(i)
        assert info['img_id'] == image_id
        assert info['img_path'] == str(o365_root / 'images' / f'obj365_{image_id:03d}.jpg')
        assert (info['height'], info['width']) == (H, W)
        cats = [next(a['category_id'] for a in make_coco()['annotations'] if a['id'] == ann_id)
                for ann_id in ann_ids]
        assert info['text'] == [NAMES[c] for c in cats]  # bare names, no prefix, stripped
        assert 'person' not in info['text']  # two persons (or a crowd): ambiguous, excluded
        for inst, ann_id, cat in zip(info['instances'], ann_ids, cats):
            assert isinstance(inst['mask']['counts'], str)  # what LoadAnnotations takes
            assert inst['bbox_label'] == cat - 1 and inst['ignore_flag'] == 0
            np.testing.assert_array_equal(mask_utils.decode(inst['mask']), masks[ann_id])
            assert masks[ann_id].any()


def test_rule_can_be_switched_off(o365_root):
    dataset = build(o365_root, unique_category_only=False)
    texts = [dataset.get_data_info(i)['text'] for i in range(len(dataset))]
    # every non-crowd instance: repeated names, as the official code may draw them
    assert texts == [['cat', 'dog', 'person', 'person', 'car', 'bus'], ['person', 'person'],
                     ['cat', 'person']]


def test_training_draws_fresh_instances_up_to_max(o365_root):
    dataset = build(o365_root, text_mode='random', max_expressions=3)
    masks = expected_masks(o365_root)
    by_text = {NAMES[a['category_id']]: masks[a['id']] for a in make_coco()['annotations']
               if a['id'] in ELIGIBLE[1]}  # image 1's
    random.seed(0)
    draws = set()
    for _ in range(12):
        item = dataset[0]
        assert len(item['text']) == 3 and len(set(item['text'])) == 3
        assert set(item['text']) <= {'cat', 'dog', 'car', 'bus'}
        assert 'candidates' not in item
        for text, inst in zip(item['text'], item['instances']):
            np.testing.assert_array_equal(mask_utils.decode(inst['mask']), by_text[text])
        draws.add(tuple(item['text']))
    assert len(draws) > 1  # drawn afresh on each read
    assert dataset[1]['text'] == ['cat']  # fewer than max: all of them
    assert len(build(o365_root, text_mode='random', max_expressions=None)[0]['text']) == 4


def test_converter_writes_the_filtered_json(o365_root, tmp_path):
    tool = load_tool('dataset_converters/filter_objects365')
    dst = tmp_path / 'filtered.json'
    counts = tool.filter_objects365(str(o365_root / 'ann.json'), str(dst))
    assert counts == dict(images=2, src_images=3, annotations=5, src_annotations=11)
    out = json.loads(dst.read_text())
    src = make_coco()
    assert [img['id'] for img in out['images']] == [1, 3]
    assert [a['id'] for a in out['annotations']] == ELIGIBLE[1] + ELIGIBLE[3]
    assert out['annotations'] == [a for a in src['annotations'] if a['id'] in (1, 2, 5, 6, 9)]
    assert out['categories'] == src['categories'] and out['info'] == src['info']
    assert not list(tmp_path.glob('.filtered.json.*'))  # no temporary file left behind

    # idempotent, and the dataset reads the filtered json with the same items
    again = tmp_path / 'again.json'
    tool.filter_objects365(str(dst), str(again))
    assert json.loads(again.read_text()) == out
    (o365_root / 'filtered.json').write_text(dst.read_text())
    full, filtered = build(o365_root), build(o365_root, ann_file='filtered.json')
    assert [full.get_data_info(i) for i in range(2)] == \
        [filtered.get_data_info(i) for i in range(2)]

    # refuses to overwrite without --force (the file is untouched), overwrites with it
    dst.write_text('keep me')
    with pytest.raises(FileExistsError, match='filtered.json'):
        tool.filter_objects365(str(o365_root / 'ann.json'), str(dst))
    assert dst.read_text() == 'keep me'
    tool.filter_objects365(str(o365_root / 'ann.json'), str(dst), force=True)
    assert json.loads(dst.read_text()) == out


def test_converter_command_line(o365_root, tmp_path, capsys):
    script = ROOT / 'tools' / 'dataset_converters' / 'filter_objects365.py'
    dst = tmp_path / 'cli.json'
    run = [sys.executable, str(script), str(o365_root / 'ann.json'), str(dst)]
    env = dict(OMP_NUM_THREADS='1', PATH='/usr/bin:/bin')
    done = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'kept 2 of 3 images and 5 of 11 annotations' in done.stdout
    # the refusal and --force in-process: the subprocess above proves the script runs
    tool = load_tool('dataset_converters/filter_objects365')
    with pytest.raises(SystemExit) as exit_info:
        tool.main(run[2:])
    assert exit_info.value.code == 1 and 'cli.json already exists' in capsys.readouterr().err
    tool.main(run[2:] + ['--force'])
    assert 'kept 2 of 3 images' in capsys.readouterr().out


def write(root: Path, coco: dict) -> str:
    (root / 'bad.json').write_text(json.dumps(coco))
    return 'bad.json'


def test_errors_name_the_file(o365_root, tmp_path):
    tool = load_tool('dataset_converters/filter_objects365')
    coco = make_coco()
    del coco['categories']
    bad = write(o365_root, coco)
    with pytest.raises(ValueError, match=r"bad\.json has no \['categories'\]"):
        build(o365_root, ann_file=bad)
    with pytest.raises(ValueError, match=r'bad\.json has no'):
        tool.filter_objects365(str(o365_root / bad), str(tmp_path / 'out.json'))
    assert not (tmp_path / 'out.json').exists()

    coco = make_coco()
    coco['annotations'][0]['category_id'] = 99
    with pytest.raises(ValueError, match=r'bad\.json: annotation 1 has category 99'):
        build(o365_root, ann_file=write(o365_root, coco))
    coco = make_coco()
    coco['annotations'][0]['image_id'] = 42
    with pytest.raises(ValueError, match=r'bad\.json: annotation 1 points to image 42'):
        build(o365_root, ann_file=write(o365_root, coco))
    coco = make_coco()
    coco['annotations'][1]['segmentation'] = dict(size=[H + 1, W], counts='0')
    with pytest.raises(ValueError, match=r'bad\.json: annotation 2'):
        build(o365_root, ann_file=write(o365_root, coco))
    (o365_root / 'broken.json').write_text('{"images": [')
    with pytest.raises(ValueError, match=r'broken\.json is not a COCO-format json'):
        build(o365_root, ann_file='broken.json')
    with pytest.raises(FileNotFoundError, match=r'missing\.json does not exist'):
        build(o365_root, ann_file='missing.json')

    (o365_root / 'images' / 'obj365_003.jpg').unlink()
    with pytest.raises(FileNotFoundError, match=r'image .*obj365_003\.jpg .*ann\.json'):
        build(o365_root)
    # image 2 has no eligible instance: its file is never needed
    (o365_root / 'images' / 'obj365_002.jpg').unlink()
    coco = make_coco()
    coco['images'] = coco['images'][:2]
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] != 3]
    assert len(build(o365_root, ann_file=write(o365_root, coco))) == 1


def test_pipeline_packs_the_masks(o365_root, xlmr_tokenizer_dir):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='SAMResize', sam_size=64, mm_size=32),
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
        dict(type='TokenizeText', tokenizer=str(xlmr_tokenizer_dir)),
        dict(type='PackReferInputs'),
    ]
    dataset = build(o365_root, pipeline=pipeline, text_mode='random', max_expressions=3)
    random.seed(1)
    packed = dataset[0]
    sample = packed['data_samples']
    masks = sample.gt_instances.masks.masks
    assert masks.shape == (3, H, W) and len(sample.text) == 3
    masks_by_id = expected_masks(o365_root)
    by_text = {NAMES[a['category_id']]: masks_by_id[a['id']] for a in make_coco()['annotations']
               if a['id'] in ELIGIBLE[1]}
    for text, mask in zip(sample.text, masks):
        np.testing.assert_array_equal(mask, by_text[text])


def test_bad_arguments():
    init_default_scope('mmevf')
    with pytest.raises(ValueError, match='text_mode'):
        DATASETS.build(dict(type='ObjectsInstanceDataset', text_mode='concat', lazy_init=True))
    with pytest.raises(ValueError, match='max_expressions'):
        DATASETS.build(dict(type='ObjectsInstanceDataset', max_expressions=0, lazy_init=True))
