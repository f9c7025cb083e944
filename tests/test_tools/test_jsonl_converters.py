"""tools/dataset_converters/refer2jsonl.py and coco2jsonl.py: JsonlReferSegDataset on
refer2jsonl's output gives ReferSegDataset's items on SynthRef and GReferSegDataset's on
SynthRef-G (texts, decoded masks, ids, sizes, no_target), gRefCOCO's crowd rule and its texts'
reordering; coco2jsonl's expressions per mode, its drops counted, its masks decoded; both
refuse bad input and existing outputs, writing nothing. Called in-process (``main(argv)``);
the docs' ``--help`` checks run each script as ``__main__`` (test_doc_commands.py), and a second
interpreter (~13 s of imports each) would prove nothing more about them."""
import collections
from functools import partial
import json
import os.path as osp
import pickle
import shutil
from pathlib import Path
from typing import List

import numpy as np
import pytest
from mmdet.datasets.transforms import LoadAnnotations
from mmengine.registry import init_default_scope
from PIL import Image

from mmevf.datasets.utils import load_refs_pickle
from mmevf.registry import DATASETS
from tests.conftest import ROOT, load_tool, synthref_dataset_cfg
from tests.fixtures import mask_shapes
from tests.fixtures.mask_shapes import rect, rle_str
from tools.dataset_converters.synthref.grefer import make_synthref_g

SPLITS = ['train', 'val', 'testA', 'testB']
GREF_ARGS = ['--ann-file', 'grefcoco/instances.json', '--split-file', 'grefcoco/grefs(unc).json',
             '--img-prefix', 'images/train2014/']


@pytest.fixture(scope='module')
def refer2jsonl():
    return load_tool('dataset_converters/refer2jsonl')


@pytest.fixture(scope='module')
def coco2jsonl():
    return load_tool('dataset_converters/coco2jsonl')


@pytest.fixture(scope='module')
def synthref_g(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('synthref_g') / 'data'
    make_synthref_g(str(root), num_images=12, seed=2)
    return root


def build(**cfg):
    init_default_scope('mmevf')
    return DATASETS.build(cfg)


def jsonl_dataset(out: Path, split: str):
    return build(type='JsonlReferSegDataset', data_root=str(out), ann_file=f'{split}.jsonl')


def loaded_masks(info: dict) -> np.ndarray:
    """(N, h, w): the item's masks as mmdet's LoadAnnotations gives them to the pipeline."""
    results = LoadAnnotations(with_bbox=False, with_label=False, with_mask=True)(
        dict(info, ori_shape=(info['height'], info['width'])))
    assert not results['gt_ignore_flags'].any()
    return results['gt_masks'].masks


def expressions_of(info: dict) -> collections.Counter:
    """An item's (text, no_target, mask bytes), order aside."""
    no_target = info.get('no_target', [False] * len(info['text']))
    return collections.Counter(
        (text, flag, mask.tobytes())
        for text, flag, mask in zip(info['text'], no_target, loaded_masks(info)))


def assert_same_items(source, converted, ordered: bool = True) -> None:
    """The items agree: image file, id, size, and texts with their no_target and decoded
    masks (in the same order if ``ordered``); ReferSegDataset's items have no ``no_target``,
    read as all False."""
    assert len(source) == len(converted) > 0
    for i in range(len(source)):
        x, y = source.get_data_info(i), converted.get_data_info(i)
        assert osp.realpath(x['img_path']) == osp.realpath(y['img_path'])
        assert (x['img_id'], x['height'], x['width']) == (y['img_id'], y['height'], y['width'])
        if ordered:
            assert x['text'] == y['text']
            assert x.get('no_target', [False] * len(x['text'])) == y['no_target']
            np.testing.assert_array_equal(loaded_masks(x), loaded_masks(y))
        else:
            assert expressions_of(x) == expressions_of(y)


def summary_of(printed: str) -> str:
    """The report's first line (a script's start-up may log before it: deepspeed's
    accelerator warning goes to stdout)."""
    return next(line for line in printed.splitlines() if line.startswith('kept '))


def test_refer2jsonl_round_trip_synthref(synthref_root, refer2jsonl, tmp_path, capsys):
    out = tmp_path / 'jsonl'
    refer2jsonl.main([str(synthref_root), str(out)])
    printed = capsys.readouterr().out
    refs = load_refs_pickle(str(synthref_root / 'synthref' / 'refs(unc).p'))
    images = {(r['split'], r['image_id']) for r in refs}
    sentences = sum(len(r['sentences']) for r in refs)
    # one object per ref, its sentences its expressions; no top-level expression
    assert summary_of(printed) == (f'kept {len(images)} images, {len(refs)} objects, '
                                   f'{sentences} object expressions, 0 top-level expressions')
    assert sorted(p.name for p in out.iterdir()) == sorted(f'{s}.jsonl' for s in SPLITS)
    first = json.loads((out / 'val.jsonl').read_text().splitlines()[0])
    assert first['image'].startswith(osp.relpath(synthref_root / 'images', out))
    for split in SPLITS:
        assert f'{split}: ' in printed
        assert_same_items(build(**synthref_dataset_cfg(synthref_root, split, text_mode='original')),
                          jsonl_dataset(out, split))


def gref_kinds(refs: List[dict]) -> collections.Counter:
    return collections.Counter('none' if r['ann_id'] == [-1] else
                               'multi' if len(r['ann_id']) > 1 else 'single' for r in refs)


def test_refer2jsonl_round_trip_grefcoco(synthref_g, refer2jsonl, tmp_path, capsys):
    out = tmp_path / 'jsonl'
    refer2jsonl.main([str(synthref_g), str(out), *GREF_ARGS])
    printed = capsys.readouterr().out
    refs = json.loads((synthref_g / 'grefcoco' / 'grefs(unc).json').read_text())
    kinds = gref_kinds(refs)
    assert min(kinds.values()) > 0  # single-, multi- and no-target refs all there
    one = sum(len(r['sentences']) for r in refs if len(r['ann_id']) == 1 and r['ann_id'] != [-1])
    top = sum(len(r['sentences']) for r in refs if len(r['ann_id']) > 1 or r['ann_id'] == [-1])
    assert f'{one} object expressions, {top} top-level expressions' in summary_of(printed)
    assert 'reordered' not in printed  # SynthRef-G lists an image's single-object refs first
    no_target = []
    for split in SPLITS:
        converted = jsonl_dataset(out, split)
        assert_same_items(build(type='GReferSegDataset', data_root=str(synthref_g), split=split),
                          converted)
        no_target += [f for i in range(len(converted)) for f in converted[i]['no_target']]
    assert any(no_target) and not all(no_target)
    # a multi-target ref: its annotations' objects listed by each of its sentences
    multi = next(r for r in refs if len(r['ann_id']) > 1)
    line = next(json.loads(text) for text in (out / f'{multi["split"]}.jsonl').open()
                if json.loads(text)['id'] == multi['image_id'])
    anns = {a['id']: a for a in json.loads(
        (synthref_g / 'grefcoco' / 'instances.json').read_text())['annotations']}
    groups = [g for g in line['expressions'] if g['text'] == multi['sentences'][0]['sent']]
    assert len(groups) == 1
    assert [line['objects'][i]['mask'] for i in groups[0]['objects']] == \
        [anns[a]['segmentation'] for a in multi['ann_id']]


def test_refer2jsonl_crowd_rule_and_reordered_texts(synthref_g, refer2jsonl, tmp_path, capsys):
    """A multi-target ref moved before its image's single-object refs, a ref naming a crowd
    region and one object (the object alone: one object with the ref's sentence), and a ref
    naming only the crowd region: the same texts and masks, the image's texts reordered."""
    refs = json.loads((synthref_g / 'grefcoco' / 'grefs(unc).json').read_text())
    coco = json.loads((synthref_g / 'grefcoco' / 'instances.json').read_text())
    multi = next(r for r in refs if len(r['ann_id']) > 1)
    refs.remove(multi)
    refs.insert(next(i for i, r in enumerate(refs) if r['image_id'] == multi['image_id']), multi)
    image = next(i for i in coco['images'] if i['id'] == multi['image_id'])
    h, w = image['height'], image['width']
    crowd = dict(coco['annotations'][0], id=10 ** 6, image_id=image['id'], iscrowd=1,
                 segmentation=[[0, 0, w, 0, w, h // 2, 0, h // 2]])
    coco['annotations'].append(crowd)

    def ref(ref_id: int, ann_ids: List[int], text: str) -> dict:
        return dict(multi, ref_id=ref_id, ann_id=ann_ids, no_target=False,
                    sentences=[dict(raw=text, sent=text, sent_id=ref_id)])

    refs += [ref(10 ** 6, [crowd['id'], multi['ann_id'][0]], 'one and a crowd'),
             ref(10 ** 6 + 1, [crowd['id']], 'the crowd')]
    root = tmp_path / 'gref'
    (root / 'grefcoco').mkdir(parents=True)
    (root / 'grefcoco' / 'grefs(unc).json').write_text(json.dumps(refs))
    (root / 'grefcoco' / 'instances.json').write_text(json.dumps(coco))
    images = synthref_g / 'images' / 'train2014'
    args = GREF_ARGS[:-1] + [str(images)]
    refer2jsonl.main([str(root), str(tmp_path / 'jsonl'), *args, '--splits', multi['split']])
    assert summary_of(capsys.readouterr().out).endswith(
        ', 1 images with reordered texts (object refs first)')
    source = build(type='GReferSegDataset', data_root=str(root), split=multi['split'],
                   data_prefix=dict(img_path=str(images)))
    converted = jsonl_dataset(tmp_path / 'jsonl', multi['split'])
    assert_same_items(source, converted, ordered=False)
    index = next(i for i in range(len(source)) if source.get_data_info(i)['img_id'] == image['id'])
    assert source.get_data_info(index)['text'] != converted.get_data_info(index)['text']
    masks = dict(zip(converted.get_data_info(index)['text'],
                     loaded_masks(converted.get_data_info(index))))
    assert masks['the crowd'][:h // 2].all() and not masks['the crowd'][h // 2:].any()
    line = next(json.loads(text) for text in (tmp_path / 'jsonl' / f'{multi["split"]}.jsonl')
                .open() if json.loads(text)['id'] == image['id'])
    by_text = {t: o for o in line['objects'] for t in o.get('expressions', [])}
    anns = {a['id']: a for a in coco['annotations']}
    assert by_text['one and a crowd']['mask'] == anns[multi['ann_id'][0]]['segmentation']
    assert by_text['the crowd']['mask'] == crowd['segmentation']


def exits_with(tool, argv: List[str], capsys) -> str:
    """What ``tool.main(argv)`` printed to stderr when it exited with code 1."""
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def test_refer2jsonl_refuses_bad_input_and_existing_outputs(synthref_root, refer2jsonl,
                                                            tmp_path, capsys):
    out = tmp_path / 'jsonl'
    out.mkdir()
    (out / 'val.jsonl').write_text('keep me')
    argv = [str(synthref_root), str(out), '--splits', 'testA', 'val']
    assert f'{out / "val.jsonl"} already exists' in exits_with(refer2jsonl, argv, capsys)
    assert (out / 'val.jsonl').read_text() == 'keep me' and not (out / 'testA.jsonl').exists()
    refer2jsonl.main(argv + ['--force'])
    assert jsonl_dataset(out, 'val').get_data_info(0)['text']
    assert (out / 'testA.jsonl').is_file()

    fresh = tmp_path / 'fresh'
    err = exits_with(refer2jsonl, [str(synthref_root), str(fresh), '--splits', 'val', 'test'],
                     capsys)
    assert "refs(unc).p has no ref of split(s) ['test'] (its splits: [" in err
    bad = tmp_path / 'bad'
    shutil.copytree(synthref_root / 'synthref', bad / 'synthref')
    (bad / 'synthref' / 'instances.json').write_text('{"images": [')
    assert 'instances.json is not a COCO-format json' in exits_with(
        refer2jsonl, [str(bad), str(fresh)], capsys)
    (bad / 'synthref' / 'instances.json').unlink()
    assert 'instances.json does not exist' in exits_with(refer2jsonl, [str(bad), str(fresh)],
                                                          capsys)
    (bad / 'synthref' / 'grefs.json').write_text('{"refs": []}')
    assert 'grefs.json holds a dict, not a list of refs' in exits_with(
        refer2jsonl, [str(bad), str(fresh), '--split-file', 'synthref/grefs.json'], capsys)
    shutil.copy(synthref_root / 'synthref' / 'instances.json', bad / 'synthref')
    refs = load_refs_pickle(str(bad / 'synthref' / 'refs(unc).p'))
    broken = next(r for r in refs if r['split'] == 'testB')
    broken['ann_id'] = 999999
    with open(bad / 'synthref' / 'refs(unc).p', 'wb') as f:
        pickle.dump(refs, f)
    # the dataset's own check, raised while converting the last split: nothing written at all
    err = exits_with(refer2jsonl, [str(bad), str(fresh)], capsys)
    assert f'ref {broken["ref_id"]} points to annotation(s) [999999]' in err
    assert not fresh.exists() or not list(fresh.iterdir())


H, W = 20, 30


box = partial(mask_shapes.box, h=H, w=W)


def uncompressed(mask: np.ndarray) -> dict:
    flat = mask.flatten(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return dict(size=[H, W], counts=([0] + counts) if flat[0] else counts)


def make_coco() -> dict:
    """Image 1 keeps annotations 1, 2, 3, 4 (one of its 2 polygons too short) and 10; image 2
    has no annotation; image 3 only a crowd region and an empty segmentation."""
    def ann(ann_id: int, image_id: int, cat: int, segmentation, crowd: int = 0, **fields):
        return dict(id=ann_id, image_id=image_id, category_id=cat, segmentation=segmentation,
                    iscrowd=crowd, area=1.0, bbox=[0, 0, 1, 1], **fields)

    return dict(
        images=[dict(id=i, file_name=f'img{i}.jpg', height=H, width=W) for i in (1, 2, 3)],
        categories=[dict(id=1, name='cat'), dict(id=2, name='Dog')],
        annotations=[
            ann(1, 1, 1, [rect(1, 1, 8, 6)]),
            ann(2, 1, 2, rle_str(box(10, 2, 16, 9)),
                expressions=['the brown dog', 'The Brown Dog ', ' ']),
            ann(3, 1, 1, uncompressed(box(20, 3, 28, 12)), caption='a sleeping cat'),
            ann(4, 1, 1, [rect(2, 10, 6, 18), [1, 1, 2, 2]]),
            ann(5, 1, 2, [[3, 3, 4, 4]]),
            ann(6, 1, 2, rle_str(box(0, 0, 5, 5)), crowd=1),
            ann(7, 3, 1, []),
            ann(8, 3, 1, [rect(0, 0, 9, 9)], crowd=1),
            ann(9, 1, 2, rle_str(np.zeros((H, W), np.uint8))),
            ann(10, 1, 1, [rle_str(box(15, 12, 29, 19))], expressions='the striped cat'),
        ])


MASKS = {1: box(1, 1, 8, 6), 2: box(10, 2, 16, 9), 3: box(20, 3, 28, 12),
         4: box(2, 10, 6, 18), 10: box(15, 12, 29, 19)}
EXPRESSIONS = {  # mode -> {annotation id: texts}
    'auto': {1: ['cat'], 2: ['the brown dog'], 3: ['a sleeping cat'], 4: ['cat'],
             10: ['the striped cat']},
    'category': {1: ['cat'], 2: ['Dog'], 3: ['cat'], 4: ['cat'], 10: ['cat']},
    'field': {2: ['the brown dog'], 3: ['a sleeping cat'], 10: ['the striped cat']},
}
DROPPED = {  # reason -> where, whatever the mode
    'polygon of fewer than 3 points (its annotation kept)': ['annotation 4 polygon 1'],
    'only polygons of fewer than 3 points': ['annotation 5'],
    'crowd region': ['annotation 6', 'annotation 8'],
    'no or empty segmentation': ['annotation 9', 'annotation 7'],
    'image without annotations': ['image 2 (img2.jpg)'],
    'image whose annotations were all dropped': ['image 3 (img3.jpg)'],
}


@pytest.fixture
def coco_dir(tmp_path) -> Path:
    folder = tmp_path / 'coco'
    folder.mkdir()
    for i in (1, 2, 3):
        Image.fromarray(np.full((H, W, 3), 50 * i, np.uint8)).save(folder / f'img{i}.jpg')
    (folder / 'ann.json').write_text(json.dumps(make_coco()))
    return folder


@pytest.mark.parametrize('mode', ['auto', 'category', 'field'])
def test_coco2jsonl_expressions_drops_and_masks(coco2jsonl, coco_dir, tmp_path, mode):
    out = tmp_path / 'out' / f'{mode}.jsonl'
    report = coco2jsonl.coco2jsonl(str(coco_dir / 'ann.json'), str(out), expressions=mode)
    expected = EXPRESSIONS[mode]
    dropped = dict(DROPPED)
    if mode == 'field':  # annotations 1 and 4 have no expressions / caption field
        dropped['no expression'] = ['annotation 1', 'annotation 4']
    assert report.dropped == dropped
    texts = sum(len(t) for t in expected.values())
    assert dict(report.kept) == dict(images=1, objects=len(expected), expressions=texts)
    lines = [json.loads(text) for text in out.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]['image'] == '../coco/img1.jpg'
    assert (lines[0]['id'], lines[0]['height'], lines[0]['width']) == (1, H, W)
    assert [o['expressions'] for o in lines[0]['objects']] == list(expected.values())
    # read back: every mask decodes to the box it was made of
    info = jsonl_dataset(out.parent, mode).get_data_info(0)
    assert info['text'] == [t.lower() for ts in expected.values() for t in ts]
    masks = [MASKS[ann_id] for ann_id, ts in expected.items() for _ in ts]
    for mask, box_mask in zip(loaded_masks(info), masks):
        np.testing.assert_array_equal(mask, box_mask)


def test_coco2jsonl_refuses_bad_input_and_existing_output(coco2jsonl, coco_dir, tmp_path,
                                                          capsys):
    out = tmp_path / 'out.jsonl'
    # images elsewhere: --img-prefix, paths still relative to OUT_JSONL's folder
    images = tmp_path / 'pictures'
    shutil.copytree(coco_dir, images)
    coco2jsonl.main([str(coco_dir / 'ann.json'), str(out), '--img-prefix', str(images)])
    printed = capsys.readouterr().out
    assert summary_of(printed) == 'kept 1 images, 5 objects, 5 expressions'
    assert 'dropped 2: crowd region (annotation 6, annotation 8)' in printed
    assert json.loads(out.read_text())['image'] == 'pictures/img1.jpg'
    before = out.read_text()
    assert f'{out} already exists' in exits_with(coco2jsonl, [str(coco_dir / 'ann.json'),
                                                              str(out)], capsys)
    coco2jsonl.main([str(coco_dir / 'ann.json'), str(out), '--force', '--expressions',
                     'category'])
    assert out.read_text() != before and '"Dog"' in out.read_text()

    fresh = str(tmp_path / 'fresh.jsonl')
    bad = coco_dir / 'bad.json'
    cases = [
        ('{"images": [', 'bad.json is not a COCO-format json'),
        ('[1, 2]', 'bad.json is not a COCO-format json'),
        (json.dumps({k: v for k, v in make_coco().items() if k != 'categories'}),
         "bad.json has no ['categories']"),
        (json.dumps(dict(make_coco(), annotations=make_coco()['annotations'] + [
            dict(id=11, image_id=42, category_id=1, segmentation=[])])),
         'bad.json: annotation 11 points to image 42'),
    ]
    coco = make_coco()
    coco['annotations'][2]['segmentation'] = 'not a mask'
    cases.append((json.dumps(coco), 'bad.json: annotation 3: a segmentation is a list'))
    coco = make_coco()
    coco['annotations'][1]['expressions'] = [3]
    cases.append((json.dumps(coco), 'bad.json: annotation 2: "expressions" must be a string'))
    coco = make_coco()
    coco['annotations'][1]['segmentation'] = dict(rle_str(box(0, 0, 2, 2)), size=[H, W + 1])
    cases.append((json.dumps(coco), 'bad.json: annotation 2: RLE size [20, 31] is not the size'))
    for text, message in cases:
        bad.write_text(text)
        assert message in exits_with(coco2jsonl, [str(bad), fresh], capsys), message
    assert 'missing.json does not exist' in exits_with(
        coco2jsonl, [str(coco_dir / 'missing.json'), fresh], capsys)
    assert not osp.exists(fresh)


def test_command_lines(tiny_refcoco, coco_dir, refer2jsonl, coco2jsonl, tmp_path, capsys):
    """Each script's main() with a full command line, its printed report."""
    refer2jsonl.main([str(tiny_refcoco), str(tmp_path / 'r'), '--ann-file',
                      'refcoco/instances.json', '--split-file', 'refcoco/refs(unc).p',
                      '--img-prefix', 'train2014/'])
    r_out = capsys.readouterr().out
    coco2jsonl.main([str(coco_dir / 'ann.json'), str(tmp_path / 'c.jsonl')])
    c_out = capsys.readouterr().out
    # tiny_refcoco: one val image, two refs (2 + 1 sentences)
    assert summary_of(r_out) == 'kept 1 images, 2 objects, 3 object expressions, ' \
        '0 top-level expressions'
    assert 'val: 1 images' in r_out
    line = json.loads((tmp_path / 'r' / 'val.jsonl').read_text())
    assert [o['expressions'] for o in line['objects']] == [['left red box', 'small box'],
                                                           ['right blue box']]
    assert summary_of(c_out) == 'kept 1 images, 5 objects, 5 expressions'
