"""SynthRef-G: SynthRef's scenes with gRefCOCO's expressions (GRES / ReLA, CVPR 2023), in
ReLA's layout, for ``GReferSegDataset``.

An expression names one object (SynthRef's own, from :func:`describe`), several ("the two
circles", "all red shapes", "every square": every object of that shape and / or colour) or
none ("the blue circle" when the scene has none, "all purple shapes" when it has no purple;
SynthRef's words). Over the dataset about 60 % / 30 % / 10 % of the expressions (sentences)
are single-, multi- and no-target, as in gRefCOCO: each scene adds as many multi- and
no-target expressions as bring the running counts nearest to that mix.

Layout written under ``out``::

    images/train2014/synthref_g_000000.jpg ...
    grefcoco/instances.json       COCO format, polygon masks
    grefcoco/grefs(unc).json      gRefCOCO refs (ann_id a list, [-1] and no_target: True for
                                  none): train / val / testA / testB
    tokenizer/, bert_tokenizer/   SynthRef's tokenizers, trained on these sentences
"""
import json
import os
import os.path as osp
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .generator import COLORS, SHAPES, SPLITS, describe, place_objects, render
from .tokenizers import train_tokenizer, write_bert_vocab
from .twins import SIZES
from .vocabulary import TWIN_TEXTS

MIX = dict(single=0.6, multi=0.3, none=0.1)  # gRefCOCO's share of the expressions per kind
COUNT_WORDS = {2: 'two', 3: 'three', 4: 'four', 5: 'five'}
# a ref: the indices of the scene's objects it names (() for none) and its sentences
Ref = Tuple[Tuple[int, ...], List[str]]


def group_expressions(objects: List[dict]) -> Dict[Tuple[int, ...], List[str]]:
    """Every multi-target expression of a scene: the (sorted, >= 2) indices of the objects it
    names -> its phrasings. Groups that name the same objects (the two circles are the two red
    shapes) are one ref with the phrasings of both, as a gRef has."""
    groups: Dict[Tuple[int, ...], List[str]] = {}

    def add(members: List[int], singular: str, plural: str) -> None:
        if len(members) < 2:
            return
        phrasings = [f'the {COUNT_WORDS[len(members)]} {plural}', f'all {plural}',
                     f'every {singular}'] + ([f'both {plural}'] if len(members) == 2 else [])
        groups.setdefault(tuple(members), []).extend(phrasings)

    for shape in SHAPES:
        add([i for i, o in enumerate(objects) if o['shape'] == shape], shape, f'{shape}s')
    for color in COLORS:
        add([i for i, o in enumerate(objects) if o['color'] == color], f'{color} shape',
            f'{color} shapes')
        for shape in SHAPES:
            add([i for i, o in enumerate(objects) if (o['color'], o['shape']) == (color, shape)],
                f'{color} {shape}', f'{color} {shape}s')
    return groups


def absent_expressions(objects: List[dict]) -> List[str]:
    """Every no-target expression of a scene: a colour-shape pair it does not hold, or all
    shapes of a colour it does not hold."""
    pairs = {(o['color'], o['shape']) for o in objects}
    colors = {o['color'] for o in objects}
    return ([f'the {c} {s}' for c in COLORS for s in SHAPES if (c, s) not in pairs]
            + [f'all {c} shapes' for c in COLORS if c not in colors])


def _pick(rng: np.random.Generator, candidates: Sequence[str], k: int) -> List[str]:
    """Up to ``k`` of ``candidates`` at random, in their order (as SynthRef picks)."""
    picked = rng.permutation(len(candidates))[:k]
    return [candidates[i] for i in sorted(picked)]


def scene_refs(rng: np.random.Generator, objects: List[dict], totals: Counter,
               sentences_per_ref: int = 3) -> List[Ref]:
    """The refs of one scene: a single-target ref per object SynthRef can describe, then as
    many multi- and no-target sentences as bring ``totals`` (sentences per kind so far, of
    :data:`MIX`'s keys; updated) nearest to :data:`MIX`, at most ``sentences_per_ref`` a ref.
    A scene without a describable object still gets a no-target ref, so that every image of a
    split is in it."""
    refs: List[Ref] = []
    for i in range(len(objects)):
        candidates = describe(objects, i)
        if candidates:
            refs.append(((i, ), _pick(rng, candidates, sentences_per_ref)))
    totals['single'] += sum(len(sentences) for _, sentences in refs)
    expected_total = totals['single'] / MIX['single']
    options = dict(multi=list(group_expressions(objects).items()),
                   none=[((), [text]) for text in absent_expressions(objects)])
    for kind, choices in options.items():
        wanted = int(round(MIX[kind] * expected_total)) - totals[kind]
        if kind == 'none' and not refs:
            wanted = max(wanted, 1)
        for k in rng.permutation(len(choices)):
            if wanted <= 0:
                break
            targets, phrasings = choices[k]
            sentences = _pick(rng, phrasings, min(sentences_per_ref, wanted))
            refs.append((targets, sentences))
            wanted -= len(sentences)
            totals[kind] += len(sentences)
    return refs


def split_names(rng: np.random.Generator, num_images: int) -> List[str]:
    """A split per image in SynthRef's proportions (:data:`SPLITS`), every split with at least
    one image so that each loads."""
    if num_images < len(SPLITS):
        raise ValueError(f'SynthRef-G needs at least {len(SPLITS)} images (one per split), '
                         f'got {num_images}')
    quota = {name: max(1, int(round(p * num_images))) for name, p in SPLITS[1:]}
    names = [SPLITS[0][0]] * (num_images - sum(quota.values()))
    names += [name for name, q in quota.items() for _ in range(q)]
    return [names[k] for k in rng.permutation(num_images)]


def _annotation(ann_id: int, image_id: int, obj: dict) -> dict:
    """The COCO annotation of a SynthRef object (polygon mask, as ``make_synthref`` writes)."""
    polygon = obj['polygon']
    xs, ys = polygon[:, 0], polygon[:, 1]
    return dict(id=ann_id, image_id=image_id, category_id=SHAPES.index(obj['shape']) + 1,
                segmentation=[[round(float(v), 2) for v in polygon.reshape(-1)]],
                area=float(cv2.contourArea(polygon.astype(np.float32))),
                bbox=[float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                iscrowd=0)


def make_synthref_g(out: str, num_images: int = 100, seed: int = 0, force: bool = False,
                    sentences_per_ref: int = 3) -> Dict[str, Dict[str, int]]:
    """Write SynthRef-G to ``out``; deterministic in ``seed``. Returns per split its images,
    refs and sentences of each kind (``single``, ``multi``, ``none``).

    Raises:
        FileExistsError: ``out`` exists and is not empty, unless ``force``.
    """
    if osp.isdir(out) and os.listdir(out) and not force:
        raise FileExistsError(f'{out} is not empty; pass --force to write into it')
    rng = np.random.default_rng(seed)
    image_dir, ann_dir = osp.join(out, 'images', 'train2014'), osp.join(out, 'grefcoco')
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    images, annotations, refs = [], [], []
    totals: Counter = Counter()
    counts = {name: Counter() for name, _ in SPLITS}
    num_sentences = 0
    for image_id, split in enumerate(split_names(rng, num_images)):
        width, height = SIZES[rng.integers(len(SIZES))]
        objects = place_objects(rng, width, height)
        file_name = f'synthref_g_{image_id:06d}.jpg'
        cv2.imwrite(osp.join(image_dir, file_name), render(rng, width, height, objects),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        counts[split]['images'] += 1
        first_ann_id = len(annotations)
        annotations += [_annotation(first_ann_id + i, image_id, o) for i, o in enumerate(objects)]
        for targets, sentences in scene_refs(rng, objects, totals, sentences_per_ref):
            sent_ids = list(range(num_sentences, num_sentences + len(sentences)))
            num_sentences += len(sentences)
            refs.append(dict(
                ref_id=len(refs), image_id=image_id, split=split, file_name=file_name,
                ann_id=[first_ann_id + i for i in targets] or [-1],  # gRefCOCO's no target
                category_id=sorted({SHAPES.index(objects[i]['shape']) + 1 for i in targets}),
                no_target=not targets, sent_ids=sent_ids,
                sentences=[dict(raw=s, sent=s, sent_id=k, tokens=s.split())
                           for k, s in zip(sent_ids, sentences)]))
            kind = 'none' if not targets else 'multi' if len(targets) > 1 else 'single'
            counts[split]['refs'] += 1
            counts[split][kind] += len(sentences)
    categories = [dict(id=k + 1, name=name) for k, name in enumerate(SHAPES)]
    with open(osp.join(ann_dir, 'instances.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    with open(osp.join(ann_dir, 'grefs(unc).json'), 'w') as f:
        json.dump(refs, f)
    all_sentences = [s['sent'] for r in refs for s in r['sentences']]
    # as SynthRef's: the twins' prompts too, so that the tiny multi-task models can read it
    train_tokenizer(all_sentences + TWIN_TEXTS, osp.join(out, 'tokenizer'))
    write_bert_vocab(all_sentences, osp.join(out, 'bert_tokenizer'))
    return {split: {key: c[key] for key in ('images', 'refs', *MIX)}
            for split, c in counts.items()}
