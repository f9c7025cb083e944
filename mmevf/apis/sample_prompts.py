"""The point / box prompts of a data sample: put on it as the model reads them
(``TextPromptSegmentor``), read back as lists, and described in a caption."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import BaseDataElement

from .inference_inputs import check_inside

# per expression: [[x, y, label], ...] or None; [x1, y1, x2, y2] or None (original pixels)
PromptLists = Tuple[List[Optional[List[List[float]]]], List[Optional[List[float]]]]


def attach_prompts(sample: BaseDataElement, item: dict) -> None:
    """Put an item's per-expression points / boxes (:func:`~mmevf.apis.input_pairing.
    pair_inputs`) on its packed data sample, as the model reads them: ``text`` (None: no
    text), and in original-image pixels ``prompt_points`` (P, 2) float64,
    ``prompt_point_labels`` (P,) long, ``prompt_boxes`` (4,) float64, each ``None`` where
    absent. Points and boxes outside the image raise a ValueError naming the image and the
    expression."""
    for j, (points, box) in enumerate(zip(item['points'], item['boxes'])):
        check_inside(points, box, sample.ori_shape, f'expression #{j} for {item["name"]}')
    sample.set_metainfo(dict(text=list(item['text'])))
    if 'text_ids' not in sample:  # no text at all: the tokenizer was skipped
        sample.text_ids = []
    sample.prompt_points = [None if p is None else torch.from_numpy(p[:, :2].copy())
                            for p in item['points']]
    sample.prompt_point_labels = [None if p is None else torch.from_numpy(p[:, 2]).long()
                                  for p in item['points']]
    sample.prompt_boxes = [None if b is None else torch.from_numpy(b.copy())
                           for b in item['boxes']]


def prompts_of(sample: BaseDataElement) -> PromptLists:
    """The points and boxes of a data sample's N expressions as lists: per expression
    ``[[x, y, label], ...]`` / ``[x1, y1, x2, y2]`` (original pixels) or None."""
    count = len(sample.text)
    coords = sample.get('prompt_points') or [None] * count
    labels = sample.get('prompt_point_labels') or [None] * count
    boxes = sample.get('prompt_boxes') or [None] * count
    points = [None if xy is None else [[float(x), float(y), int(label)] for (x, y), label
                                       in zip(xy.tolist(), lab.tolist())]
              for xy, lab in zip(coords, labels)]
    return points, [None if b is None else [float(v) for v in b.tolist()] for b in boxes]


def describe_prompt(text: Optional[str], points: Optional[Sequence[Sequence[float]]],
                    box: Optional[Sequence[float]]) -> str:
    """A caption: the text, plus the point count (foreground + / background -) and the box."""
    parts = [] if text is None else [text]
    if points:
        foreground = sum(int(p[2]) == 1 for p in points)
        parts.append(f'{len(points)} point{"s" * (len(points) > 1)} '
                     f'({foreground}+ {len(points) - foreground}-)')
    if box is not None:
        parts.append('box ({:g}, {:g}, {:g}, {:g})'.format(*box))
    return ' + '.join(parts)
