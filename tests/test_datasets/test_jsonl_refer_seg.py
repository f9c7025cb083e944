"""JsonlReferSegDataset on small hand-written .jsonl files: polygon, RLE (str and list counts)
and PNG masks decode to the boxes they were made of, a top-level expression targets the union
of its objects or nothing (``no_target``), fresh draws in training, the image size read from
the header without decoding, bad input named by ``file:line`` and object, and one pass through
mmdet's ``LoadAnnotations`` and ``PackReferInputs``."""
import json
import random
import re
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from mmdet.datasets.transforms import LoadAnnotations
from mmengine.registry import init_default_scope
from PIL import Image, ImageFile

import mmevf.datasets.jsonl_refer_seg as jsonl_module
from mmevf.registry import DATASETS
from tests.fixtures import mask_shapes
from tests.fixtures.mask_shapes import rect, rle_str

H, W = 20, 30  # a.png
HB, WB = 16, 24  # b.jpg, given by no line: read from its header

box = partial(mask_shapes.box, h=H, w=W)  # another size: box(..., h=HB, w=WB)


def uncompressed(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: column-major run lengths, zeros first."""
    counts, value, run = [], 0, 0
    for v in mask.flatten(order='F'):
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    return dict(size=list(mask.shape), counts=counts + [run])


# the masks the lines below are made of, as (H, W) arrays
LEFT, RIGHT, LOW = box(2, 3, 10, 8), box(12, 2, 18, 9), box(20, 10, 28, 18)
PNG_BOX = box(1, 12, 8, 19)
THING = box(3, 4, 20, 12, h=HB, w=WB)


def line_a(**changes) -> dict:
    """Image a.png: a polygon, a compressed RLE, an uncompressed RLE without expressions and a
    PNG mask; a union and a no-target top-level expression."""
    line = dict(image='a.png', id=7, height=H, width=W, objects=[
        dict(mask=[rect(2, 3, 10, 8)], expressions=['The Left Box ', 'small box']),
        dict(mask=rle_str(RIGHT), expressions=['the right box']),
        dict(mask=uncompressed(LOW)),
        dict(mask='masks/a_3.png', expressions=['the PNG box']),
    ], expressions=[dict(text='Both Boxes', objects=[1, 2]),
                    dict(text='the unicorn', objects=[])])
    line.update(changes)
    return line


TEXTS_A = ['the left box', 'small box', 'the right box', 'the png box', 'both boxes',
           'the unicorn']
MASKS_A = [LEFT, LEFT, RIGHT, PNG_BOX, RIGHT | LOW, np.zeros((H, W), np.uint8)]
LINE_B = dict(image='b.jpg', objects=[dict(mask='masks/b_0.png', expressions=['the thing'])])
LINE_SILENT = dict(image='absent.png', objects=[dict(mask=[rect(0, 0, 4, 4)])])


def write_lines(path: Path, lines: list) -> None:
    """``lines``: dicts (one JSON line each), or strings written as they are."""
    path.write_text(''.join((text if isinstance(text, str) else json.dumps(text)) + '\n'
                            for text in lines))


@pytest.fixture
def root(tmp_path) -> Path:
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(tmp_path / 'a.png')
    Image.fromarray(np.full((HB, WB, 3), 150, np.uint8)).save(tmp_path / 'b.jpg')
    (tmp_path / 'masks').mkdir()
    Image.fromarray(PNG_BOX * 255).save(tmp_path / 'masks' / 'a_3.png')  # L, 0 / 255
    rgb = np.zeros((HB, WB, 3), np.uint8)
    rgb[..., 1] = THING * 7  # RGB: any non-zero channel is the object
    Image.fromarray(rgb).save(tmp_path / 'masks' / 'b_0.png')
    # line 2 is blank, line 4 has no expression (its image absent: never needed)
    write_lines(tmp_path / 'val.jsonl', [line_a(), '  ', LINE_B, LINE_SILENT])
    return tmp_path


def build(root: Path, ann_file: str = 'val.jsonl', pipeline=(), **kwargs):
    init_default_scope('mmevf')
    return DATASETS.build(dict(type='JsonlReferSegDataset', data_root=str(root),
                               ann_file=ann_file, pipeline=list(pipeline), **kwargs))


def loaded_masks(info: dict) -> np.ndarray:
    """(N, h, w): the item's masks as mmdet's LoadAnnotations gives them to the pipeline."""
    results = LoadAnnotations(with_bbox=False, with_label=False, with_mask=True)(
        dict(info, ori_shape=(info['height'], info['width'])))
    assert not results['gt_ignore_flags'].any()  # PackDetInputs would drop flagged masks
    return results['gt_masks'].masks


def test_items_masks_and_no_target(root, monkeypatch):
    warnings = []
    monkeypatch.setattr(jsonl_module, 'print_log', lambda msg, **kw: warnings.append(msg))
    dataset = build(root)
    assert len(dataset) == 2 and dataset.num_expressions == len(TEXTS_A) + 1
    a, b = dataset.get_data_info(0), dataset.get_data_info(1)
    assert a['img_path'] == str(root / 'a.png') and b['img_path'] == str(root / 'b.jpg')
    assert (a['img_id'], a['height'], a['width']) == (7, H, W)
    # no id: the 0-based index among non-blank lines; no size: the header's
    assert (b['img_id'], b['height'], b['width']) == (1, HB, WB)
    assert a['text'] == TEXTS_A and a['no_target'] == [False] * 5 + [True]
    for mask, expected in zip(loaded_masks(a), MASKS_A):
        np.testing.assert_array_equal(mask, expected)
    assert b['text'] == ['the thing'] and b['no_target'] == [False]
    np.testing.assert_array_equal(loaded_masks(b)[0], THING)
    # polygons stay polygons; RLE (the PNG's, the union with an RLE) reach mmdet as str counts
    masks = [inst['mask'] for inst in a['instances']]
    assert masks[0] == [rect(2, 3, 10, 8)]
    assert all(isinstance(m['counts'], str) for m in (masks[2], masks[3], masks[4]))
    assert masks[5] == [[0.0] * 6]
    assert len(warnings) == 1 and re.search(r'val\.jsonl: left out 1 image line.*line 4\)',
                                            warnings[0])

    first = build(root, text_mode='select_first').get_data_info(0)
    assert first['text'] == ['the left box', 'the right box', 'the png box', 'both boxes',
                             'the unicorn'] and first['no_target'][-1]


def test_random_mode_draws_afresh(root):
    dataset = build(root, text_mode='random', num_sentences=1)
    refs = dataset.get_data_info(0)['refs']
    assert [r['sentences'] for r in refs] == [TEXTS_A[:2], *[[t] for t in TEXTS_A[2:]]]
    assert [r['objects'] for r in refs] == [[0], [1], [3], [1, 2], []]
    by_text = dict(zip(TEXTS_A, MASKS_A))
    random.seed(0)
    firsts = set()
    for _ in range(12):
        item = dataset[0]
        assert len(item['text']) == 5 and item['text'][1:] == TEXTS_A[2:]
        firsts.add(item['text'][0])
        assert item['no_target'] == [False] * 4 + [True]
        for text, mask in zip(item['text'], loaded_masks(item)):
            np.testing.assert_array_equal(mask, by_text[text])
    assert firsts == {'the left box', 'small box'}  # one sentence of the object, drawn afresh
    capped = build(root, text_mode='random', num_sentences=None, max_expressions=2)
    draws = {tuple(capped[0]['text']) for _ in range(12)}
    assert all(len(d) == 2 and set(d) <= set(TEXTS_A) for d in draws) and len(draws) > 1


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, 'big') + kind + data + zlib.crc32(kind + data).to_bytes(4, 'big')


def test_size_comes_from_the_header_without_decoding(root, monkeypatch):
    """A 63-byte PNG declaring 3000x4000 RGB pixels whose pixel data is not even zlib: any
    decode would fail (and PIL's load is forbidden too); its header gives the size."""
    header = (4000).to_bytes(4, 'big') + (3000).to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    (root / 'big.png').write_bytes(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header)
                                   + png_chunk(b'IDAT', b'not zlib') + png_chunk(b'IEND', b''))
    write_lines(root / 'big.jsonl', [dict(image='big.png', objects=[
        dict(mask=[rect(100, 200, 300, 400)], expressions=['a box'])])])

    def no_decode(self):
        raise AssertionError('the image was decoded')

    monkeypatch.setattr(Image.Image, 'load', no_decode)
    monkeypatch.setattr(ImageFile.ImageFile, 'load', no_decode)
    info = build(root, 'big.jsonl').get_data_info(0)
    assert (info['height'], info['width']) == (3000, 4000)
    # a given size is checked against the header, also without decoding
    write_lines(root / 'big.jsonl', [dict(image='big.png', height=3000, width=4000, objects=[
        dict(mask=[rect(100, 200, 300, 400)], expressions=['a box'])])])
    assert build(root, 'big.jsonl').get_data_info(0)['width'] == 4000


def _bad(root: Path, case: str) -> list:
    """The lines of bad.jsonl for ``case``."""
    a = line_a()
    if case == 'size_differs':
        return [line_a(height=H + 1)]
    if case == 'rle_size':
        a['objects'][1]['mask'] = rle_str(box(12, 2, 18, 9, h=H, w=W + 1))
    elif case == 'list_rle_size':
        a['objects'][2]['mask'] = uncompressed(box(0, 0, 2, 2, h=H - 1, w=W))
    elif case == 'png_size':
        Image.fromarray(box(0, 0, 2, 2, h=H - 1, w=W) * 255).save(root / 'masks' / 'a_3.png')
    elif case == 'png_rgba':
        Image.new('RGBA', (W, H)).save(root / 'masks' / 'a_3.png')
    elif case == 'missing_png':
        a['objects'][3]['mask'] = 'masks/none.png'
    elif case == 'missing_image':
        return [LINE_B, line_a(image='gone.png')]
    elif case == 'duplicate_id':
        return [line_a(), LINE_B, dict(LINE_B, id=7)]
    elif case == 'typo':
        a['objects'][2] = dict(mask=a['objects'][2]['mask'], expresions=['low box'])
    elif case == 'bad_index':
        a['expressions'][0]['objects'] = [1, 4]
    elif case == 'not_json':
        return [LINE_B, '{"image": "a.png", ']
    elif case == 'no_expression':
        return [LINE_SILENT, '', dict(LINE_SILENT, id=5)]
    return [a]


@pytest.mark.parametrize('case, error, message', [
    ('size_differs', ValueError, r'bad\.jsonl:1: height x width 21x30 differ from the 20x30 of '
     r'image .*a\.png'),
    ('rle_size', ValueError, r'bad\.jsonl:1 object 1: RLE size \[20, 31\] is not the size '
     r'\[20, 30\] of image .*a\.png'),
    ('list_rle_size', ValueError, r'bad\.jsonl:1 object 2: RLE size \[19, 30\] is not the size '
     r'\[20, 30\] of image .*a\.png'),
    ('png_size', ValueError, r'bad\.jsonl:1 object 3 \(image .*a\.png\): mask .*a_3\.png is '
     r'19x30, the image 20x30'),
    ('png_rgba', ValueError, r'bad\.jsonl:1 object 3 \(image .*a\.png\): mask .*a_3\.png is a '
     r'RGBA image'),
    ('missing_png', FileNotFoundError, r'bad\.jsonl:1 object 3 \(image .*a\.png\): mask '
     r'.*none\.png does not exist'),
    ('missing_image', FileNotFoundError, r'bad\.jsonl:2: image .*gone\.png does not exist'),
    ('duplicate_id', ValueError, r'bad\.jsonl:3: id 7 is already the id of line 1'),
    ('typo', ValueError, r"bad\.jsonl:1 object 2 has unknown key\(s\) \['expresions'\]"),
    ('bad_index', ValueError, r'bad\.jsonl:1 expression 0: object indices \[1, 4\]'),
    ('not_json', ValueError, r'bad\.jsonl:2 is not a JSON object'),
    ('no_expression', ValueError, r'bad\.jsonl has no expression'),
])
def test_bad_input_is_named(root, case, error, message):
    write_lines(root / 'bad.jsonl', _bad(root, case))
    with pytest.raises(error, match=message):
        build(root, 'bad.jsonl')


def test_bad_arguments(root):
    with pytest.raises(ValueError, match='text_mode must be one of'):
        build(root, text_mode='every')
    with pytest.raises(FileNotFoundError, match=r'none\.jsonl does not exist'):
        build(root, 'none.jsonl')


def test_pipeline_packs_masks_and_no_target(root, xlmr_tokenizer_dir):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='SAMResize', sam_size=64, mm_size=32),
        # mmdet's transforms carry their scope: in scope mmevf a bare 'LoadAnnotations' is mmcv's
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
        dict(type='TokenizeText', tokenizer=str(xlmr_tokenizer_dir)),
        dict(type='PackReferInputs'),
    ]
    # images under a prefix: image and mask paths start there
    sub = root / 'data'
    sub.mkdir()
    for name in ('a.png', 'b.jpg', 'masks'):
        (root / name).rename(sub / name)
    dataset = build(root, pipeline=pipeline, data_prefix=dict(img_path='data'))
    packed = dataset[0]
    sample = packed['data_samples']
    assert sample.text == TEXTS_A and sample.no_target == [False] * 5 + [True]
    assert max(packed['inputs']['img'].shape[1:]) == 64
    masks = sample.gt_instances.masks.masks
    assert masks.shape == (len(TEXTS_A), H, W)
    for mask, expected in zip(masks, MASKS_A):
        np.testing.assert_array_equal(mask, expected)
