"""SynthRef: a synthetic referring-segmentation dataset in the exact refer / RefCOCO layout.

Scenes hold 3-5 coloured shapes of two sizes at random, well separated positions. Every
expression identifies exactly one object of its scene with a clear margin, and most need the
image and the text together: the colour and shape words alone do not say where the object is,
and relational expressions ("the circle left of the blue square", "the larger triangle",
"the leftmost square") need the other objects too.

Layout written under ``out``::

    images/synthref_000000.jpg ...
    synthref/instances.json       COCO format, polygon masks
    synthref/refs(unc).p          refer-toolkit refs: train / val / testA / testB
    tokenizer/sentencepiece.bpe.model   a small XLM-R-style (unigram) tokenizer of its words
    bert_tokenizer/vocab.txt            a BERT WordPiece vocabulary of its words (for DIT)

No pretrained tokenizer can be downloaded here, so SynthRef carries its own, in the layout of
the tokenizer folder that ships with EVF-SAM checkpoints.
"""
import json
import os
import os.path as osp
import pickle
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from .tokenizers import train_tokenizer, write_bert_vocab
from .vocabulary import SHAPES, TWIN_TEXTS

COLORS = {  # name -> BGR
    'red': (40, 40, 220), 'green': (60, 180, 60), 'blue': (220, 90, 40),
    'yellow': (40, 220, 230), 'purple': (170, 60, 150), 'white': (245, 245, 245)}
SIZES = {'small': (16, 22), 'large': (30, 40)}  # radius range in pixels
NUM_OBJECTS = (3, 5)
SPLITS = (('train', 0.7), ('val', 0.1), ('testA', 0.1), ('testB', 0.1))
# The words of describe()'s three templates besides colours and shapes:
#   attribute    "the {colour} {shape}"
#   superlative  "the {SIZE_WORDS | EXTREMES} {shape}"
#   relational   "the {shape} {RELATIONS} the {colour} {shape}"
SIZE_WORDS = ('larger', 'smaller')  # of the two objects of a shape
EXTREMES = {'leftmost': ('cx', 1), 'rightmost': ('cx', -1),  # word -> (axis, sign)
            'topmost': ('cy', 1), 'lowest': ('cy', -1)}
RELATIONS = ('left of', 'right of', 'above', 'below')
EXPRESSION_TYPES = ('attribute', 'superlative', 'relational')


def shape_polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """(K, 2) polygon (x, y) of a shape centred at (cx, cy) with 'radius' r."""
    if shape == 'circle':
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    elif shape == 'square':
        angles = np.pi / 4 + np.arange(4) * np.pi / 2
        r = r * 1.2
    else:
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        r = r * 1.25
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)


def place_objects(rng: np.random.Generator, width: int, height: int,
                  num_objects: Tuple[int, int] = NUM_OBJECTS) -> List[dict]:
    """3-5 (``num_objects``, as many as fit) well separated objects with random shape, colour,
    size and position."""
    objects: List[dict] = []
    wanted = int(rng.integers(num_objects[0], num_objects[1] + 1))
    for _ in range(300):
        if len(objects) >= wanted:
            break
        size = str(rng.choice(list(SIZES)))
        r = float(rng.uniform(*SIZES[size]))
        cx, cy = rng.uniform(r * 1.3, width - r * 1.3), rng.uniform(r * 1.3, height - r * 1.3)
        if any(np.hypot(cx - o['cx'], cy - o['cy']) < 1.3 * (r + o['r']) + 12 for o in objects):
            continue
        shape, color = str(rng.choice(SHAPES)), str(rng.choice(list(COLORS)))
        objects.append(dict(shape=shape, color=color, size=size, r=r, cx=cx, cy=cy,
                            polygon=shape_polygon(shape, cx, cy, r)))
    return objects


def describe(objects: List[dict], i: int) -> List[str]:
    """Every expression from our templates that singles out object ``i``."""
    target = objects[i]

    def matches(pred) -> List[int]:
        return [j for j, o in enumerate(objects) if pred(o)]

    def unique(pred) -> bool:  # pred holds for the target only
        return matches(pred) == [i]

    def is_kind(o, shape=None, color=None):
        return (shape is None or o['shape'] == shape) and (color is None or o['color'] == color)

    shape, color = target['shape'], target['color']
    found = []
    if unique(lambda o: is_kind(o, shape, color)):
        found.append(f'the {color} {shape}')
    same_shape = [o for o in objects if o['shape'] == shape]
    if len(same_shape) == 2 and abs(same_shape[0]['r'] - same_shape[1]['r']) > 5:
        larger = target['r'] == max(o['r'] for o in same_shape)
        found.append(f'the {SIZE_WORDS[0] if larger else SIZE_WORDS[1]} {shape}')
    if len(same_shape) >= 2:
        # only when the target leads every other such shape by half their radii: an
        # extreme that a few pixels decide would be a coin toss at the model's resolution
        for word, (key, sign) in EXTREMES.items():
            if all(sign * (o[key] - target[key]) > (o['r'] + target['r']) / 2
                   for o in same_shape if o is not target):
                found.append(f'the {word} {shape}')
    for j, anchor in enumerate(objects):
        if j == i or matches(lambda o: is_kind(o, anchor['shape'], anchor['color'])) != [j]:
            continue
        for word, test in zip(RELATIONS,
                              (lambda o: o['cx'] < anchor['cx'] - anchor['r'],
                               lambda o: o['cx'] > anchor['cx'] + anchor['r'],
                               lambda o: o['cy'] < anchor['cy'] - anchor['r'],
                               lambda o: o['cy'] > anchor['cy'] + anchor['r'])):
            if test(target) and unique(lambda o: o is not anchor and is_kind(o, shape) and test(o)):
                found.append(f'the {shape} {word} the {anchor["color"]} {anchor["shape"]}')
    return found


class Expression(NamedTuple):
    """What :func:`parse_expression` reads from one of :func:`describe`'s expressions."""
    type: str  # one of EXPRESSION_TYPES
    shape: str  # the target's shape (every template names it)
    color: Optional[str]  # the target's colour: attribute expressions only


def _alternatives(words) -> str:
    return '|'.join(re.escape(w) for w in words)


_COLOR, _SHAPE = f'({_alternatives(COLORS)})', f'({_alternatives(SHAPES)})'
_PATTERNS = dict(
    attribute=re.compile(f'the {_COLOR} {_SHAPE}'),
    superlative=re.compile(f'the ({_alternatives(SIZE_WORDS + tuple(EXTREMES))}) {_SHAPE}'),
    relational=re.compile(f'the {_SHAPE} ({_alternatives(RELATIONS)}) the {_COLOR} {_SHAPE}'))


def parse_expression(text: str) -> Optional[Expression]:
    """The template of :func:`describe` that wrote ``text`` (whitespace and case aside), with
    the target's shape and, for an attribute expression, its colour; ``None`` for a text that
    no template writes."""
    text = ' '.join(text.lower().split())
    for kind, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if match:
            if kind == 'attribute':
                return Expression(kind, match.group(2), match.group(1))
            return Expression(kind, match.group(2 if kind == 'superlative' else 1), None)
    return None


def render(rng: np.random.Generator, width: int, height: int, objects: List[dict]) -> np.ndarray:
    """(H, W, 3) uint8 BGR: a noisy grey background with the filled polygons."""
    image = rng.normal(110, 12, (height, width, 3)).clip(0, 255).astype(np.uint8)
    for o in objects:
        cv2.fillPoly(image, [np.round(o['polygon']).astype(np.int32)], COLORS[o['color']])
    return image


def make_synthref(out: str, num_images: int = 200, seed: int = 0,
                  sentences_per_ref: int = 3, size_choices: Optional[Tuple] = None) -> Dict:
    """Write SynthRef to ``out``; returns counts per split. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    sizes = size_choices or ((256, 192), (224, 224), (192, 256), (256, 160))
    os.makedirs(osp.join(out, 'images'), exist_ok=True)
    os.makedirs(osp.join(out, 'synthref'), exist_ok=True)
    images, annotations, refs = [], [], []
    counts = {name: dict(images=0, refs=0, sentences=0) for name, _ in SPLITS}
    split_names = [name for name, _ in SPLITS]
    split_probs = [p for _, p in SPLITS]
    for image_id in range(num_images):
        width, height = sizes[rng.integers(len(sizes))]
        objects = place_objects(rng, width, height)
        file_name = f'synthref_{image_id:06d}.jpg'
        cv2.imwrite(osp.join(out, 'images', file_name), render(rng, width, height, objects),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        split = split_names[rng.choice(len(split_names), p=split_probs)]
        counts[split]['images'] += 1
        for i, o in enumerate(objects):
            ann_id = len(annotations)
            xs, ys = o['polygon'][:, 0], o['polygon'][:, 1]
            annotations.append(dict(
                id=ann_id, image_id=image_id, category_id=SHAPES.index(o['shape']) + 1,
                segmentation=[[round(float(v), 2) for v in o['polygon'].reshape(-1)]],
                area=float(cv2.contourArea(o['polygon'].astype(np.float32))),
                bbox=[float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                iscrowd=0))
            candidates = describe(objects, i)
            if not candidates:
                continue
            picked = rng.permutation(len(candidates))[:sentences_per_ref]
            sentences = [candidates[k] for k in sorted(picked)]
            first_sent_id = sum(len(r['sent_ids']) for r in refs)
            sent_ids = list(range(first_sent_id, first_sent_id + len(sentences)))
            refs.append(dict(
                ref_id=len(refs), ann_id=ann_id, image_id=image_id, split=split,
                category_id=SHAPES.index(o['shape']) + 1, file_name=file_name, sent_ids=sent_ids,
                sentences=[dict(raw=s, sent=s, sent_id=k, tokens=s.split())
                           for k, s in zip(sent_ids, sentences)]))
            counts[split]['refs'] += 1
            counts[split]['sentences'] += len(sentences)
    categories = [dict(id=k + 1, name=name) for k, name in enumerate(SHAPES)]
    with open(osp.join(out, 'synthref', 'instances.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    with open(osp.join(out, 'synthref', 'refs(unc).p'), 'wb') as f:
        pickle.dump(refs, f, protocol=2)
    all_sentences = [s['sent'] for r in refs for s in r['sentences']]
    # the twins' prompts too: one tokenizer for the tiny EVF-SAMs
    train_tokenizer(all_sentences + TWIN_TEXTS, osp.join(out, 'tokenizer'))
    write_bert_vocab(all_sentences, osp.join(out, 'bert_tokenizer'))  # DIT reads no twin
    return counts
