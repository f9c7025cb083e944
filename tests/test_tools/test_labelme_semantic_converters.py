"""labelme2jsonl.py, semantic2jsonl.py and make_synthref_labelme.py on inputs written here:
every labelme shape type decoded and compared with a hand rasterisation, group ids merged,
label / description expressions, the drop report counted exactly, errors naming the file
with nothing written; label maps turned into ``[semantic] {class}`` objects pixel for pixel;
SynthRef through labelme and back to its own masks and sentences."""
import base64
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from mmevf.datasets.utils import load_refs_pickle, read_jsonl
from tests.conftest import ROOT, load_tool

H, W = 16, 24
TOOLS = ROOT / 'tools' / 'dataset_converters'


@pytest.fixture(scope='module')
def labelme():
    return load_tool('dataset_converters/labelme2jsonl')


@pytest.fixture(scope='module')
def semantic():
    return load_tool('dataset_converters/semantic2jsonl')


def decode(mask, height: int = H, width: int = W) -> np.ndarray:
    """An output mask (polygons or compressed RLE) decoded by pycocotools, as mmdet does."""
    if isinstance(mask, list):
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(mask, height, width)))
    assert isinstance(mask['counts'], str) and mask['size'] == [height, width]
    return mask_utils.decode(mask)


def box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Pixels of columns x0..x1-1, rows y0..y1-1 (COCO's rasterisation of that rectangle)."""
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='PNG')
    return base64.b64encode(buffer.getvalue()).decode('ascii')


def shape(label: str, points: list, shape_type: str = 'polygon', group_id: Optional[int] = None,
          **extra) -> dict:
    return dict(label=label, points=points, group_id=group_id, shape_type=shape_type,
                flags={}, **extra)


def write_labelme(folder: Path, stem: str, shapes: List[dict], image: Optional[str] = None,
                  size=(H, W), make_image: bool = True) -> Path:
    """``folder/stem.json`` (labelme 5.4 layout) and, unless told not to, its jpg image."""
    folder.mkdir(parents=True, exist_ok=True)
    image = image or f'{stem}.jpg'
    if make_image:
        Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(folder / image)
    data = dict(version='5.4.1', flags={}, shapes=shapes, imagePath=image, imageData=None,
                imageHeight=size[0], imageWidth=size[1])
    path = folder / f'{stem}.json'
    path.write_text(json.dumps(data, indent=2))
    return path


# an L-shaped hexagon: rows 1-3 of columns 1-6 plus rows 4-8 of columns 1-3
L_POLYGON = [[1, 1], [7, 1], [7, 4], [4, 4], [4, 9], [1, 9]]
L_MASK = box(1, 1, 7, 4) | box(1, 4, 4, 9)
PATCH = np.array([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 1, 0]], np.uint8)


def patch_mask(x0: int, y0: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y0 + PATCH.shape[0], x0:x0 + PATCH.shape[1]] = PATCH
    return mask


def test_each_shape_type_decodes_to_its_hand_mask(labelme, tmp_path, capsys):
    write_labelme(tmp_path / 'lm', 'a', [
        shape('L block', L_POLYGON, description='the L'),
        # corners in either order
        shape('box', [[10, 8], [2, 3]], 'rectangle'),
        shape('disc', [[16.5, 7.5], [16.5, 13.5]], 'circle'),
        # labelme >= 5.3: the PNG of the box whose corners are the 2 points (inclusive)
        shape('blob', [[12, 9], [16, 12]], 'mask', mask=png_b64(PATCH * 255)),
        shape('Blob', [[0, 11], [4, 14]], 'mask', mask=png_b64(PATCH.astype(bool))),
    ])
    out = tmp_path / 'out' / 'train.jsonl'
    labelme.main([str(tmp_path / 'lm'), str(out)])
    assert 'kept 1 images, 5 objects, 5 expressions' in capsys.readouterr().out
    [line] = read_jsonl(str(out))  # the format's own checker accepts it
    assert line['image'] == '../lm/a.jpg' and (out.parent / line['image']).is_file()
    assert (line['height'], line['width']) == (H, W) and set(line) == {
        'image', 'height', 'width', 'objects'}
    objects = line['objects']
    assert [o['expressions'] for o in objects] == [['L block'], ['box'], ['disc'], ['blob'],
                                                   ['Blob']]
    assert objects[0]['mask'] == [[v for p in L_POLYGON for v in p]]
    np.testing.assert_array_equal(decode(objects[0]['mask']), L_MASK)
    rectangle = decode(objects[1]['mask'])
    np.testing.assert_array_equal(rectangle, box(2, 3, 10, 8))
    assert rectangle.sum() == 8 * 5
    # the circle of radius 6 around (16.5, 7.5): pixel (x, y) has its centre at (x+.5, y+.5)
    ys, xs = np.mgrid[:H, :W]
    distance = np.hypot(xs + 0.5 - 16.5, ys + 0.5 - 7.5)
    disc = decode(objects[2]['mask']).astype(bool)
    assert disc[distance <= 5.5].all() and not disc[distance >= 6.5].any()
    assert abs(disc.sum() - math.pi * 36) < 6  # 32-gon of area 112.4 vs the disc's 113.1
    assert len(objects[2]['mask'][0]) == 64
    np.testing.assert_array_equal(decode(objects[3]['mask']), patch_mask(12, 9))
    np.testing.assert_array_equal(decode(objects[4]['mask']), patch_mask(0, 11))


def test_groups_are_one_object_and_expressions_follow_the_mode(labelme, tmp_path):
    write_labelme(tmp_path, 'g', [
        shape('car', [[1, 1], [5, 4]], 'rectangle', group_id=7, description='the red car'),
        shape('dog', [[14, 2], [20, 6]], 'rectangle', description='Dog'),
        shape('the car', [[1, 8], [6, 12]], 'rectangle', group_id=7),
        shape('tree', [[10, 9], [14, 12]], 'mask', group_id=3, mask=png_b64(PATCH)),
        shape('tree', [[18, 10], [22, 15]], 'rectangle', group_id=3, description=''),
        shape('cat', [[8, 12], [11, 15]], 'rectangle', group_id=None),
    ])
    out = tmp_path / 'o.jsonl'
    by_mode = {}
    for mode in ('label', 'description', 'both'):
        report = labelme.labelme2jsonl(str(tmp_path), str(out), mode, force=True)
        [line] = read_jsonl(str(out))
        by_mode[mode] = [o['expressions'] for o in line['objects']]
        objects = line['objects']
        assert len(objects) == 4 and not report.dropped
        # group 7 (shapes 0 and 2) is one object at its first shape's place: polygons' union
        assert len(objects[0]['mask']) == 2
        np.testing.assert_array_equal(decode(objects[0]['mask']),
                                      box(1, 1, 5, 4) | box(1, 8, 6, 12))
        np.testing.assert_array_equal(decode(objects[1]['mask']), box(14, 2, 20, 6))
        # group 3 mixes a pixel mask with a rectangle: one RLE of the union
        assert isinstance(objects[2]['mask'], dict)
        np.testing.assert_array_equal(decode(objects[2]['mask']),
                                      patch_mask(10, 9) | box(18, 10, 22, 15))
        np.testing.assert_array_equal(decode(objects[3]['mask']), box(8, 12, 11, 15))
    assert by_mode['label'] == [['car', 'the car'], ['dog'], ['tree'], ['cat']]
    # shapes without a description give no expression; their objects stay (masks kept)
    assert by_mode['description'] == [['the red car'], ['Dog'], [], []]
    assert report.kept['objects without expression'] == 0  # the last run: 'both'
    # labels then descriptions, without repeats ('Dog' is 'dog' once lower-cased)
    assert by_mode['both'] == [['car', 'the car', 'the red car'], ['dog'], ['tree'], ['cat']]
    report = labelme.labelme2jsonl(str(tmp_path), str(out), 'description', force=True)
    assert report.kept == {'images': 1, 'objects': 4, 'expressions': 2,
                           'objects without expression': 2}


def test_drops_are_reported_exactly(labelme, tmp_path, capsys):
    lm = tmp_path / 'lm'
    write_labelme(lm, 'a', [
        shape('ok', [[1, 1], [4, 4]], 'rectangle'),
        shape('short', [[1, 1], [5, 5]]),  # a 2-point polygon
        shape('edge', [[1, 1], [9, 9]], 'line'),
        shape('path', [[1, 1], [5, 2], [9, 9]], 'linestrip'),
        shape('tip', [[3, 3]], 'point'),
        shape('  ', [[1, 1], [5, 1], [5, 5]]),  # an empty label
        shape('flat', [[1, 1], [5, 5], [9, 9]]),  # collinear: nothing to rasterise
        shape('void', [[2, 2], [6, 5]], 'mask', mask=png_b64(np.zeros((4, 5), np.uint8))),
        # half of group 1 survives: the object is its other shape
        shape('pair', [[1, 1], [2, 2]], group_id=1),
        shape('pair', [[10, 10], [14, 13]], 'rectangle', group_id=1),
    ])
    # the image is missing even though imageData is embedded: the format needs a file
    missing = write_labelme(lm / 'sub', 'b', [shape('x', [[1, 1], [4, 4]], 'rectangle')],
                            make_image=False)
    data = json.loads(missing.read_text())
    data['imageData'] = png_b64(np.zeros((H, W, 3), np.uint8))
    missing.write_text(json.dumps(data))
    write_labelme(lm, 'c', [])  # an image annotated with nothing keeps its line
    out, report_file = tmp_path / 'out.jsonl', tmp_path / 'report.txt'
    labelme.main([str(lm), str(out), '--report', str(report_file)])
    printed = capsys.readouterr().out
    report = labelme.labelme2jsonl(str(lm), str(out), force=True)
    assert dict(report.kept) == {'images': 2, 'objects': 2, 'expressions': 2}
    assert report.dropped == {
        'polygon of fewer than 3 points': ['a.json shape 1', 'a.json shape 8'],
        'line shape (no area)': ['a.json shape 2'],
        'linestrip shape (no area)': ['a.json shape 3'],
        'point shape (no area)': ['a.json shape 4'],
        'empty label': ['a.json shape 5'],
        'empty mask': ['a.json shape 6', 'a.json shape 7'],
        'image file missing': ['sub/b.json'],
    }
    assert printed.splitlines()[0] == 'kept 2 images, 2 objects, 2 expressions'
    assert 'dropped 2: empty mask (a.json shape 6, a.json shape 7)' in printed
    assert report_file.read_text() == report.summary(examples=None) + '\n'
    lines = read_jsonl(str(out))
    assert [line['image'] for line in lines] == ['lm/a.jpg', 'lm/c.jpg']
    assert [o['expressions'] for o in lines[0]['objects']] == [['ok'], ['pair']]
    np.testing.assert_array_equal(decode(lines[0]['objects'][1]['mask']), box(10, 10, 14, 13))
    assert lines[1]['objects'] == []


@pytest.mark.parametrize('content, message', [
    ('{"shapes": [', 'not JSON'),
    ('{"imagePath": "a.jpg", "imageHeight": 16, "imageWidth": 24}', 'no "shapes" list'),
    ('[1, 2]', 'no "shapes" list'),
    ('{"shapes": [{"label": "x", "points": "1,2"}], "imagePath": "a.jpg"}',
     r'shape 0: "points" must be a list'),
    ('{"shapes": [{"label": 3, "points": []}], "imagePath": "a.jpg"}', '"label" must be'),
    ('{"shapes": [], "imagePath": "a.jpg", "imageHeight": "16", "imageWidth": 24}',
     '"imageHeight" must be a positive integer'),
])
def test_a_file_that_is_not_labelme_is_an_error_naming_it(labelme, tmp_path, capsys, content,
                                                          message):
    write_labelme(tmp_path / 'lm', 'a', [shape('ok', [[1, 1], [4, 4]], 'rectangle')])
    (tmp_path / 'lm' / 'z').mkdir()
    (tmp_path / 'lm' / 'z' / 'broken.json').write_text(content)
    out = tmp_path / 'out.jsonl'
    with pytest.raises(SystemExit) as exit_info:
        labelme.main([str(tmp_path / 'lm'), str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and 'z/broken.json' in err and message in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / 'lm']


def test_size_mismatch_bad_mask_and_overwrite_are_errors(labelme, tmp_path, capsys):
    lm, out = tmp_path / 'lm', tmp_path / 'out.jsonl'
    write_labelme(lm, 'a', [shape('ok', [[1, 1], [4, 4]], 'rectangle')], size=(H + 1, W))
    with pytest.raises(ValueError, match=r'a\.json: imageHeight x imageWidth 17x24 differ from '
                                         r'the 16x24 of .*a\.jpg'):
        labelme.labelme2jsonl(str(lm), str(out))
    write_labelme(lm, 'a', [shape('ok', [[1, 1], [4, 4]], 'rectangle')], size=(W, H))
    with pytest.raises(ValueError, match='EXIF-rotated'):
        labelme.labelme2jsonl(str(lm), str(out))
    write_labelme(lm, 'a', [shape('m', [[22, 1], [26, 4]], 'mask', mask=png_b64(PATCH))])
    with pytest.raises(ValueError, match=r'a\.json shape 0: its 5x4 mask at \(22, 1\) leaves'):
        labelme.labelme2jsonl(str(lm), str(out))
    write_labelme(lm, 'a', [shape('m', [[2, 1], [6, 4]], 'mask', mask='not a png')])
    with pytest.raises(ValueError, match=r'a\.json shape 0: "mask" is not a base64 PNG'):
        labelme.labelme2jsonl(str(lm), str(out))
    assert not out.exists()

    # refuses an existing OUT_JSONL (untouched), overwrites it with --force
    write_labelme(lm, 'a', [shape('ok', [[1, 1], [4, 4]], 'rectangle')])
    out.write_text('keep me')
    with pytest.raises(SystemExit) as exit_info:
        labelme.main([str(lm), str(out)])
    assert exit_info.value.code == 1 and 'out.jsonl already exists' in capsys.readouterr().err
    assert out.read_text() == 'keep me'
    labelme.main([str(lm), str(out), '--force'])
    assert read_jsonl(str(out))[0]['objects'][0]['expressions'] == ['ok']
    assert not list(tmp_path.glob('.out.jsonl.*'))  # no temporary file left behind


# semantic2jsonl ----------------------------------------------------------------------------

LABEL = np.array([
    [0, 0, 0, 1, 1, 1, 255, 255],
    [0, 0, 0, 1, 1, 1, 255, 255],
    [0, 2, 2, 2, 1, 1, 1, 1],
    [0, 2, 2, 2, 1, 1, 1, 1],
    [255, 255, 2, 2, 2, 0, 0, 0],
    [255, 255, 2, 2, 2, 0, 0, 0],
], np.uint8)


def write_semantic(root: Path, labels: dict, size=LABEL.shape) -> None:
    """images/<stem>.jpg of ``size`` and labels/<stem>.png per ``labels`` (stem -> array or
    None for an image without label map)."""
    for stem, label in labels.items():
        (root / 'images' / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / 'labels' / stem).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(root / 'images' / f'{stem}.jpg')
        if label is not None:
            Image.fromarray(label).save(root / 'labels' / f'{stem}.png')


def run_semantic(semantic, root: Path, *options: str, classes: str = 'classes.txt') -> list:
    out = root / 'out.jsonl'
    semantic.main([str(root / 'images'), str(root / 'labels'), str(root / classes), str(out),
                   '--force', *options])
    return read_jsonl(str(out))


def test_semantic_label_maps_become_class_objects(semantic, tmp_path, capsys):
    # ';' synonyms keep the first name (mmseg's), names stripped and lower-cased; 'car' absent
    (tmp_path / 'classes.txt').write_text('wall\nSky;heaven\n tree \ncar\n\n')
    (tmp_path / 'classes.json').write_text(json.dumps(['wall', 'sky', 'tree', 'car']))
    write_semantic(tmp_path, {'a': LABEL, 'sub/b': np.full(LABEL.shape, 255, np.uint8),
                              'c': None})
    (tmp_path / 'labels' / 'orphan.png').write_bytes(b'')  # a label map without image
    lines = run_semantic(semantic, tmp_path)
    printed = capsys.readouterr().out
    assert printed.splitlines()[:3] == [
        'kept 2 images, 3 objects, 1 images without labelled pixel',
        'dropped 1: image without label map (c.jpg)',
        'dropped 1: label map without image (orphan.png)']
    assert [line['image'] for line in lines] == ['images/a.jpg', 'images/sub/b.jpg']
    assert lines[1]['objects'] == []  # all ignore: a line with nothing (the dataset skips it)
    objects = lines[0]['objects']
    assert (lines[0]['height'], lines[0]['width']) == LABEL.shape
    assert [o['expressions'] for o in objects] == [['[semantic] wall'], ['[semantic] sky'],
                                                   ['[semantic] tree']]
    for value, obj in enumerate(objects):
        assert isinstance(obj['mask']['counts'], str)
        np.testing.assert_array_equal(decode(obj['mask'], *LABEL.shape), LABEL == value)
    assert run_semantic(semantic, tmp_path, classes='classes.json') == lines

    # ADE20K's encoding: raw 0 unlabelled, raw k is class k - 1 (255 stays unlabelled)
    objects = run_semantic(semantic, tmp_path, '--reduce-zero-label',
                           '--template', 'the {class} region')[0]['objects']
    assert [o['expressions'] for o in objects] == [['the wall region'], ['the sky region']]
    np.testing.assert_array_equal(decode(objects[0]['mask'], *LABEL.shape), LABEL == 1)
    np.testing.assert_array_equal(decode(objects[1]['mask'], *LABEL.shape), LABEL == 2)
    # another ignore index: 255 is then a value outside the 4 classes
    with pytest.raises(SystemExit):
        run_semantic(semantic, tmp_path, '--ignore-index', '0')
    assert 'a.png has values [255] outside the 4 classes' in capsys.readouterr().err


def test_semantic_errors_name_the_files(semantic, tmp_path, capsys):
    (tmp_path / 'classes.txt').write_text('wall\nsky\ntree\n')
    out = tmp_path / 'out.jsonl'
    argv = [str(tmp_path / d) for d in ('images', 'labels', 'classes.txt', 'out.jsonl')]
    bad = LABEL.copy()
    bad[0, 0], bad[5, 7] = 7, 3
    write_semantic(tmp_path, {'a': LABEL, 'b': bad})
    with pytest.raises(SystemExit) as exit_info:
        semantic.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and 'b.png has values [3, 7] outside the 3 classes' in err
    assert not out.exists()  # a.png was fine: still nothing written

    write_semantic(tmp_path, {'b': LABEL}, size=(LABEL.shape[0], LABEL.shape[1] + 1))
    with pytest.raises(ValueError, match=r'label map .*b\.png is 6x8 but image .*b\.jpg is 6x9'):
        semantic.semantic2jsonl(*argv)
    Image.fromarray(np.zeros((*LABEL.shape, 3), np.uint8)).save(tmp_path / 'labels' / 'b.png')
    with pytest.raises(ValueError, match=r'b\.png must be a single-channel PNG'):
        semantic.semantic2jsonl(*argv)
    with pytest.raises(ValueError, match='needs one placeholder'):
        semantic.semantic2jsonl(*argv, template='[semantic] wall')
    (tmp_path / 'classes.txt').write_text('wall\n\nsky\n')
    with pytest.raises(ValueError, match=r'classes\.txt: class 1 has an empty name'):
        semantic.semantic2jsonl(*argv)
    assert not out.exists()
    out.write_text('keep me')
    with pytest.raises(SystemExit):
        semantic.main(argv)
    assert 'out.jsonl already exists' in capsys.readouterr().err and out.read_text() == 'keep me'


# SynthRef -> labelme -> jsonl ---------------------------------------------------------------

def synthref_truth(root: Path, split: str) -> dict:
    """{file name: [(mask, sentences) per ref, in ref order]} for the split's images."""
    coco = json.loads((root / 'synthref' / 'instances.json').read_text())
    images = {img['id']: img for img in coco['images']}
    anns = {ann['id']: ann for ann in coco['annotations']}
    truth = {}
    for ref in sorted(load_refs_pickle(str(root / 'synthref' / 'refs(unc).p')),
                      key=lambda r: r['ref_id']):
        if ref['split'] != split:
            continue
        img = images[ref['image_id']]
        rle = mask_utils.merge(mask_utils.frPyObjects(
            anns[ref['ann_id']]['segmentation'], img['height'], img['width']))
        truth.setdefault(img['file_name'], []).append(
            (mask_utils.decode(rle), [s['sent'] for s in ref['sentences']]))
    return truth


def test_synthref_through_labelme_gives_back_its_refs(synthref_root, labelme, tmp_path):
    maker = load_tool('dataset_converters/make_synthref_labelme')
    folder = tmp_path / 'labelme'
    counts = maker.make_synthref_labelme(str(synthref_root), str(folder), 6, 'train')
    truth = synthref_truth(synthref_root, 'train')
    names = sorted(truth)[:6]  # SynthRef names its images by id
    assert counts == dict(images=6, shapes=sum(len(truth[n]) for n in names))
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        names + [n.replace('.jpg', '.json') for n in names])
    labelme.labelme2jsonl(str(folder), str(folder / 'train.jsonl'), 'both')
    lines = read_jsonl(str(folder / 'train.jsonl'))
    assert [line['image'] for line in lines] == names
    for line in lines:
        refs = truth[line['image']]
        assert len(line['objects']) == len(refs)
        for obj, (mask, sentences) in zip(line['objects'], refs):
            assert mask.any()
            np.testing.assert_array_equal(decode(obj['mask'], line['height'], line['width']),
                                          mask)
            # label: the first sentence, description: the second
            assert obj['expressions'] == sentences[:2]
    with pytest.raises(FileExistsError, match='already holds labelme jsons'):
        maker.make_synthref_labelme(str(synthref_root), str(folder), 6, 'train')
    first = (folder / names[0].replace('.jpg', '.json')).read_text()
    maker.make_synthref_labelme(str(synthref_root), str(folder), 6, 'train', force=True)
    assert (folder / names[0].replace('.jpg', '.json')).read_text() == first  # deterministic


@pytest.mark.slow
def test_command_line(tmp_path):
    """The real run of labelme2jsonl.py, the walkthrough's converter (its start-up imports
    mmevf: ~13 s of CPU). make_synthref_labelme.py runs as ``__main__`` in the docs'
    walkthrough (tests/test_foundation/test_doc_commands.py), semantic2jsonl.py in-process
    above: a second interpreter each would prove nothing more about them."""
    write_labelme(tmp_path / 'lm', 'a', [shape('box', [[2, 3], [10, 8]], 'rectangle'),
                                         shape('edge', [[1, 1], [9, 9]], 'line')])
    done = subprocess.run([sys.executable, str(TOOLS / 'labelme2jsonl.py'), str(tmp_path / 'lm'),
                           str(tmp_path / 'lm.jsonl')], capture_output=True, text=True,
                          env=dict(OMP_NUM_THREADS='1', PATH='/usr/bin:/bin'), cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # stdout also carries deepspeed's accelerator notice: the report is after it
    assert ('\nkept 1 images, 1 objects, 1 expressions\n'
            'dropped 1: line shape (no area) (a.json shape 1)\n') in done.stdout
    [line] = read_jsonl(str(tmp_path / 'lm.jsonl'))
    assert line['image'] == os.path.join('lm', 'a.jpg')
    np.testing.assert_array_equal(decode(line['objects'][0]['mask']), box(2, 3, 10, 8))
