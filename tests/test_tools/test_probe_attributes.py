"""tools/analysis/probe_attributes.py and the SynthRef templates it reads.

- ``parse_expression`` reads back every expression ``describe`` writes for generated scenes
  (the template's type, the target's shape and, for attribute expressions, its colour), with
  case and whitespace ignored, and nothing from other texts;
- ``linear_probe`` separates separable blobs, scores chance on label-free features and, on
  constant features, exactly ``chance()``, itself checked against a hand count;
- ``sam_frame`` puts a mask in SAM's padded frame; ``nearest_color`` names a generator colour;
- ``ciou_table`` / ``probe_rows`` on hand-made results;
- ``main`` on a small SynthRef with the random tiny EVF-SAM: its cIoU per type and overall
  against the masks ``TextSegInferencer`` predicts for the same images and texts (ground truth
  decoded from ``instances.json`` with pycocotools), its counts and probe rows against the refs
  pickle; a missing checkpoint is named.
"""
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from tests.conftest import load_tool
from tools.dataset_converters.synthref import (COLORS, EXPRESSION_TYPES, EXTREMES, RELATIONS,
                                               SHAPES, SIZE_WORDS, Expression, describe,
                                               parse_expression, place_objects)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis/probe_attributes')


# ---------------------------------------------------------------------- the templates
def template_type(text: str) -> str:
    """The template of describe() that wrote ``text``, read off its words (not its regexes):
    a size / extreme word second -> superlative; a relation -> relational; else attribute."""
    words = text.split()
    if words[1] in SIZE_WORDS or words[1] in EXTREMES:
        return 'superlative'
    if any(f' {relation} ' in text for relation in RELATIONS):
        return 'relational'
    assert len(words) == 3 and words[1] in COLORS, text
    return 'attribute'


def test_parse_expression_reads_back_every_template():
    seen = Counter()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        width, height = ((256, 192), (224, 224), (192, 256))[seed % 3]
        objects = place_objects(rng, width, height)
        for i, target in enumerate(objects):
            for text in describe(objects, i):
                kind = template_type(text)
                expected = Expression(kind, target['shape'],
                                      target['color'] if kind == 'attribute' else None)
                assert parse_expression(text) == expected, text
                # case and whitespace aside, the same reading
                noisy = '  ' + '\t '.join(w.upper() if k % 2 else w.capitalize()
                                         for k, w in enumerate(text.split())) + ' \n'
                assert parse_expression(noisy) == expected, noisy
                seen[kind] += 1
    # the scenes exercise every template (and every superlative / relation word somewhere)
    assert set(seen) == set(EXPRESSION_TYPES) and min(seen.values()) >= 10, seen


def test_parse_expression_hand_cases():
    assert parse_expression('the larger triangle') == Expression('superlative', 'triangle', None)
    assert parse_expression('the leftmost square') == Expression('superlative', 'square', None)
    # the target's shape, not the anchor's; the anchor's colour is not the target's
    assert parse_expression('the circle left of the white square') == Expression(
        'relational', 'circle', None)
    assert parse_expression('THE  Green\tTriangle') == Expression('attribute', 'triangle', 'green')
    for text in ('a dog', '', 'red circle', 'the pink circle', 'the red hexagon',
                 'the red circle left', 'the circle left of the red', 'the biggest circle',
                 'the red circle and the blue square', 'xthe red circle'):
        assert parse_expression(text) is None, text


# ---------------------------------------------------------------------- the probe
def blobs(rng: torch.Generator, per_class: int, centres: torch.Tensor):
    labels = torch.arange(len(centres)).repeat_interleave(per_class)
    return centres[labels] + torch.randn(len(labels), centres.shape[1], generator=rng), labels


def test_linear_probe_separates_blobs(tool):
    rng = torch.Generator().manual_seed(0)
    # 3 classes 10 sigma apart along their own axes (in 5-d): a linear rule has a margin of
    # ~7 sigma, so any working probe classifies every held-out point
    centres = 10 * torch.eye(3, 5) + torch.tensor([3., -2., 50., 7., 0.])
    train_x, train_y = blobs(rng, 40, centres)
    test_x, test_y = blobs(rng, 30, centres)
    accuracy = tool.linear_probe(train_x, train_y, test_x, test_y)
    assert accuracy == 100.0
    assert tool.linear_probe(train_x, train_y, test_x, test_y) == accuracy  # deterministic
    # the held-out labels are what is scored: shuffled, the same fit scores near chance
    shuffled = test_y[torch.randperm(len(test_y), generator=rng)]
    assert tool.linear_probe(train_x, train_y, test_x, shuffled) < 60


def test_linear_probe_is_at_chance_without_signal(tool):
    rng = torch.Generator().manual_seed(1)
    train_x, test_x = torch.randn(300, 20, generator=rng), torch.randn(900, 20, generator=rng)
    train_y = torch.randint(0, 3, (300, ), generator=rng)
    test_y = torch.randint(0, 3, (900, ), generator=rng)
    # whatever the probe learns from the train noise, each held-out label is independent of
    # its prediction: the accuracy is Binomial(900, 1/3) / 900, std 1.6 points; 6 points
    # (3.8 std) apart from 1/3 would be a leak of the held-out labels
    accuracy = tool.linear_probe(train_x, train_y, test_x, test_y)
    assert abs(accuracy - 100 / 3) < 6
    # and it does fit the train noise (20-d, 300 points): the probe is not simply inert
    assert tool.linear_probe(train_x, train_y, train_x, train_y) > 45


def test_chance_and_constant_features(tool):
    train_y = torch.tensor([0, 1, 1, 2, 1, 2])  # class 1 most frequent (3 of 6)
    test_y = torch.tensor([1, 0, 1, 1, 2, 2, 0, 1])  # 4 of 8 are class 1
    assert tool.chance(train_y, test_y) == 50.0
    assert tool.chance(torch.tensor([2, 2, 0]), test_y) == 25.0
    # a probe on constant features learns only the class frequencies: it scores chance
    constant = torch.full((6, 4), 3.5)
    assert tool.linear_probe(constant, train_y, torch.full((8, 4), 3.5), test_y) == 50.0


# ---------------------------------------------------------------------- masks and colours
def test_sam_frame_resizes_and_pads(tool):
    masks = torch.zeros(2, 60, 80, dtype=torch.bool)
    masks[0, 10:40, 20:60] = True  # 30 x 40 box
    masks[1] = True
    h, w, pad = 45, 60, 64  # the SAM view is 3/4 of the original, padded to 64 x 64
    frame = tool.sam_frame(masks, (h, w, 3), pad)
    assert frame.shape == (2, pad, pad) and frame.dtype == torch.float32
    assert frame.min() >= 0 and frame.max() <= 1
    assert frame[:, h:].abs().sum() == 0 and frame[:, :, w:].abs().sum() == 0  # the padding
    assert torch.allclose(frame[1, :h, :w], torch.ones(h, w))  # a full mask covers the view
    # the box lands at 3/4 of its place: rows 7.5..30, columns 15..45
    assert (frame[0, 9:29, 17:44] > 0.99).all()
    assert frame[0, :6].sum() == 0 and frame[0, 32:].sum() == 0
    assert frame[0, :, :13].sum() == 0 and frame[0, :, 47:].sum() == 0
    assert frame[0].sum().item() == pytest.approx(30 * 40 * 0.75**2, rel=0.02)


@pytest.mark.parametrize('name', list(COLORS))
def test_nearest_color_names_the_generator_colour(tool, name):
    rng = torch.Generator().manual_seed(0)
    other = next(c for c in COLORS if c != name)
    view = torch.tensor(COLORS[other], dtype=torch.float64).view(3, 1, 1).repeat(1, 24, 32)
    inside = torch.zeros(24, 32, dtype=torch.bool)
    inside[4:14, 6:20] = True
    view[:, inside] = torch.tensor(COLORS[name], dtype=torch.float64)[:, None]
    # JPEG-like noise; the view is uint8 BGR as the pipeline gives it
    view = (view + 8 * torch.randn(view.shape, generator=rng)).round().clamp(0, 255)
    view = view.to(torch.uint8)
    assert tool.nearest_color(view, inside) == name
    assert tool.nearest_color(view, ~inside) == other  # only the mask's pixels count


# ---------------------------------------------------------------------- the tables
def test_ciou_table_and_probe_rows(tool):
    result = dict(intersection=dict(attribute=30, relational=10, other=5),
                  union=dict(attribute=60, relational=40, other=100),
                  counts=dict(attribute=3, relational=2, other=1))
    lines = tool.ciou_table(result).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert list(rows) == ['attribute', 'superlative', 'relational', 'other', 'all']
    assert rows['attribute'] == ['3', '50.00'] and rows['relational'] == ['2', '25.00']
    assert rows['superlative'] == ['0', '-'] and rows['other'] == ['1', '5.00']
    assert rows['all'] == ['6', f'{100 * 45 / 200:.2f}']
    del result['counts']['other'], result['intersection']['other'], result['union']['other']
    assert 'other' not in tool.ciou_table(result)

    def features(n):
        f = tool.Features()
        for k in range(n):
            f.add(torch.tensor([float(k % 3), 1.]), list(COLORS)[k % 3], SHAPES[k % 3])
        return f

    train = dict(objects=features(9), prompts=features(6))
    test = dict(objects=features(6), prompts=tool.Features())  # no attribute expression
    rows = tool.probe_rows(train, test)
    assert [r[:3] for r in rows] == [
        ('image embedding -> colour', 9, 6), ('image embedding -> shape', 9, 6),
        ('prompt (attribute expr.) -> colour', 6, 0), ('prompt (attribute expr.) -> shape', 6, 0)]
    assert rows[0][3] == rows[1][3] == 100.0  # feature 0 is the class
    assert rows[2][3:] == rows[3][3:] == (None, None)
    assert tool.probe_table(rows, 'val').splitlines()[-1].split()[-2:] == ['-', '-']


# ---------------------------------------------------------------------- main
def first_images(root: Path, split: str, count: int):
    """The first ``count`` images of ``split`` (in the order of their first ref in the refs
    pickle) -> [(file name, height, width, [(text, ann_id), ...])], from the files."""
    with open(root / 'synthref' / 'refs(unc).p', 'rb') as f:
        refs = [r for r in pickle.load(f) if r['split'] == split]
    coco = json.loads((root / 'synthref' / 'instances.json').read_text())
    images = {image['id']: image for image in coco['images']}
    order = list(dict.fromkeys(r['image_id'] for r in refs))
    return [(images[i]['file_name'], images[i]['height'], images[i]['width'],
             [(s['sent'], r['ann_id']) for r in refs if r['image_id'] == i
              for s in r['sentences']]) for i in order[:count]]


def test_main_scores_the_split_as_the_inferencer(tool, synthref_root, tiny_checkpoint, capsys):
    from mmevf.apis import TextSegInferencer

    split, max_images = 'testA', 2
    out = tool.main([CONFIG, str(tiny_checkpoint), '--data-root', str(synthref_root), '--split',
                     split, '--max-images', str(max_images), '--tokenizer',
                     str(synthref_root / 'tokenizer')])
    test = out['test']
    assert test['images'] == max_images

    # the same images and texts through the inferencer; ground truth from instances.json
    items = first_images(synthref_root, split, max_images)
    assert len(items) == max_images
    coco = json.loads((synthref_root / 'synthref' / 'instances.json').read_text())
    polygons = {ann['id']: ann['segmentation'] for ann in coco['annotations']}
    inferencer = TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                                   tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                   show_progress=False)
    predictions = inferencer([str(synthref_root / 'images' / name) for name, *_ in items],
                             [[text for text, _ in expressions] for *_, expressions in items],
                             batch_size=4)['predictions']
    inter, union, counts = Counter(), Counter(), Counter()
    for (_, height, width, expressions), prediction in zip(items, predictions):
        assert prediction['masks'].shape == (len(expressions), height, width)
        for (text, ann_id), pred in zip(expressions, prediction['masks']):
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons[ann_id], height, width))
            gt = mask_utils.decode(rle).astype(bool)
            kind = template_type(text)
            inter[kind] += int((pred & gt).sum())
            union[kind] += int((pred | gt).sum())
            counts[kind] += 1
    assert dict(test['counts']) == dict(counts)
    assert sum(test['counts'].values()) == sum(len(e) for *_, e in items)
    assert test['intersection'] == dict(inter) and test['union'] == dict(union)

    # the printed table: each type's and the split's cIoU, 100 * sum(I) / sum(U)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f'{tiny_checkpoint} on {synthref_root} {split} '
                                 f'({max_images} images; probes fit on {max_images} train')
    table = {line.split()[0]: line.split()[1:] for line in printed[3:7]}
    assert list(table) == list(EXPRESSION_TYPES) + ['all']
    for kind in EXPRESSION_TYPES:
        assert table[kind] == [str(counts[kind]), f'{100 * inter[kind] / union[kind]:.2f}']
    all_ciou = 100 * sum(inter.values()) / sum(union.values())
    assert table['all'] == [str(sum(counts.values())), f'{all_ciou:.2f}']

    # the features: one object row per referred object, labelled with its shape and (where an
    # attribute expression names it) its colour; one prompt row per attribute expression
    def labels(expressions):
        objects, prompts = {}, []
        for text, ann_id in expressions:
            parsed = parse_expression(text)
            objects.setdefault(ann_id, [parsed.shape, None])
            if parsed.color is not None:
                objects[ann_id][1] = parsed.color
                prompts.append((parsed.color, parsed.shape))
        return list(objects.values()), prompts

    objects, prompts = labels([e for *_, expressions in items for e in expressions])
    rows = test['objects'].tensors()
    got = Counter((list(COLORS)[c], SHAPES[s]) for c, s in zip(rows['colour'].tolist(),
                                                                 rows['shape'].tolist()))
    assert len(rows['x']) == len(objects) and rows['x'].shape[1] == 64  # SAM's channels
    assert Counter(s for _, s in got.elements()) == Counter(s for s, _ in objects)
    named = Counter((c, s) for s, c in objects if c is not None)
    assert not named - got, (named, got)  # the pixels' colour is the one the text names
    prompt_rows = test['prompts'].tensors()
    assert Counter((list(COLORS)[c], SHAPES[s]) for c, s in zip(
        prompt_rows['colour'].tolist(), prompt_rows['shape'].tolist())) == Counter(prompts)

    train_objects, train_prompts = labels(
        [e for *_, expressions in first_images(synthref_root, 'train', max_images)
         for e in expressions])
    probes = out['probes']
    assert [(name, n_train, n_test) for name, n_train, n_test, *_ in probes] == [
        ('image embedding -> colour', len(train_objects), len(objects)),
        ('image embedding -> shape', len(train_objects), len(objects)),
        ('prompt (attribute expr.) -> colour', len(train_prompts), len(prompts)),
        ('prompt (attribute expr.) -> shape', len(train_prompts), len(prompts))]
    for *_, accuracy, chance_level in probes:
        assert 0 <= accuracy <= 100 and 0 <= chance_level <= 100
    printed_probes = printed[-4:]
    assert [re.sub(r'\s+\d.*$', '', line) for line in printed_probes] == [p[0] for p in probes]


def test_main_names_a_missing_checkpoint(tool, tmp_path):
    missing = tmp_path / 'nowhere' / 'tiny.pth'
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        tool.main([CONFIG, str(missing)])
