"""Images paired with their expressions: what ``TextSegInferencer(inputs, texts, points, boxes)``
means by each form of its arguments, checked (:func:`pair_inputs`)."""
import os
import os.path as osp
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from .inference_inputs import (IMAGE_SUFFIXES, ImageType, TextsType, check_array, check_box,
                               check_points)


def list_images(folder: str) -> List[str]:
    """The image files (``IMAGE_SUFFIXES``) of ``folder``, sorted; subfolders are not read."""
    return sorted(osp.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_SUFFIXES)
                  and osp.isfile(osp.join(folder, name)))


def is_expression(text: Any) -> bool:
    """A single expression (str, or None for none), as opposed to a list of them."""
    return text is None or isinstance(text, str)


def _entries(value: Any, count: int, what: str, unit: str) -> list:
    """``value`` as a list of ``count`` entries, one per ``unit``, or a ValueError."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise ValueError(f'{what}: expected a list with one entry per {unit} ({count}), got '
                         f'{value!r}')
    if len(value) != count:
        raise ValueError(f'{what}: {len(value)} entries for {count} {unit}s; give one entry '
                         f'per {unit} (None for none)')
    return list(value)


def follow_texts(value: Any, texts: TextsType, per_image: List[list], mode: str,
                 what: str) -> List[list]:
    """Points or boxes given in the nesting of ``texts`` -> per image, one entry per expression.

    Args:
        value: ``None`` (none anywhere), or entries nested as ``texts`` is: in place of each
            expression, that expression's points / box (or ``None``).
        texts: the ``texts`` argument as given.
        per_image: the expressions of every image (the normalised ``texts``).
        mode: how ``texts`` was read: ``'one'`` (one expression for every image),
            ``'shared'`` (one list of expressions for every image), ``'per_image'``.
        what: ``'points'`` or ``'boxes'``, for messages.
    """
    if value is None:
        return [[None] * len(expressions) for expressions in per_image]
    if mode == 'one':
        return [[value] for _ in per_image]
    if mode == 'shared':
        entries = _entries(value, len(per_image[0]), what, 'expression')
        return [list(entries) for _ in per_image]
    by_image = _entries(value, len(per_image), what, 'image')
    out = []
    for i, (entry, text, expressions) in enumerate(zip(by_image, texts, per_image)):
        if is_expression(text):
            out.append([entry])
        elif entry is None:
            out.append([None] * len(expressions))
        else:
            out.append(_entries(entry, len(expressions), f'{what}[{i}]', 'expression'))
    return out


def pair_inputs(inputs: Union[ImageType, Sequence[ImageType]], texts: TextsType,
                points: Optional[Sequence] = None,
                boxes: Optional[Sequence] = None) -> List[dict]:
    """Images and expressions -> one item per image with all its expressions.

    ``texts``: for one image, a str or a list of str; for several images, a str (the same
    expression everywhere) or one entry (str or list of str) per image. A folder stands for the
    images in it, each getting every expression of a str / list of str. ``None`` in place of a
    str is an expression without text (its points / box only).

    ``points`` and ``boxes`` (``None``: none) are nested exactly as ``texts``, holding in place
    of each expression its points (a list of (x, y) or (x, y, label); label 1 foreground, the
    default, or 0 background) or its box (x1, y1, x2, y2), or ``None``; original-image pixels.
    E.g. ``texts=['a', None]`` for one image takes ``points=[[(4, 5)], [(7, 8), (9, 9, 0)]]``,
    ``boxes=[None, (1, 2, 30, 40)]``. Whether they lie inside the image is checked when it is
    loaded.

    Returns:
        ``dict(img, name, stem, img_id, img_path, text, points, boxes)`` per image: ``img``
        the path, or the array as (H, W, 3) uint8 BGR; ``name`` for messages; ``stem`` for file
        names (unique); ``text`` the list of its expressions (str or None), ``points`` /
        ``boxes`` one entry per expression: None, (P, 3) float64 rows (x, y, label), (4,)
        float64.
    """
    from_dir = isinstance(inputs, str) and osp.isdir(inputs)
    if from_dir:
        images = list_images(inputs)
    else:
        images = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    single = not isinstance(inputs, (list, tuple)) and len(images) == 1
    if not images:
        raise ValueError(f'no image in {inputs}' if from_dir else 'no image given')
    if is_expression(texts):
        mode, per_image = 'one', [[texts]] * len(images)
    elif single or (from_dir and all(is_expression(t) for t in texts)):
        # every image gets all expressions
        mode, per_image = 'shared', [list(texts)] * len(images)
    else:
        texts = list(texts)
        if len(texts) != len(images):
            raise ValueError(f'{len(images)} images but {len(texts)} text entries: give one '
                             f'entry (str or list of str) per image, or one str')
        mode, per_image = 'per_image', [[t] if is_expression(t) else list(t) for t in texts]
    per_image_points = follow_texts(points, texts, per_image, mode, 'points')
    per_image_boxes = follow_texts(boxes, texts, per_image, mode, 'boxes')
    items, stems = [], set()
    for i, (image, expressions, image_points, image_boxes) in enumerate(
            zip(images, per_image, per_image_points, per_image_boxes)):
        name = image if isinstance(image, str) else f'image #{i} (array)'
        if isinstance(image, str):
            if not osp.isfile(image):
                raise FileNotFoundError(f'image {image} does not exist')
            if osp.getsize(image) == 0:  # mmcv's decoder fails on it without the name
                raise ValueError(f'cannot decode image {image}: the file is empty')
        elif isinstance(image, np.ndarray):
            # the loader takes arrays as they are: BGR uint8 (H, W, 3) is checked here
            image = check_array(image, name)
        else:
            raise TypeError(f'image #{i}: expected a path or a numpy array, got '
                            f'{type(image).__name__}')
        if not expressions:
            raise ValueError(f'no expression for {name}')
        checked_points, checked_boxes = [], []
        for j, (text, expr_points, box) in enumerate(
                zip(expressions, image_points, image_boxes)):
            if text is not None and not isinstance(text, str):
                raise TypeError(f'expression #{j} for {name} is a {type(text).__name__}, '
                                f'not a str (or None)')
            if text is not None and not text.strip():
                raise ValueError(f'empty expression #{j} for {name}')
            where = f'expression #{j} for {name}'
            checked_points.append(check_points(expr_points, where))
            checked_boxes.append(check_box(box, where))
            if text is None and checked_points[-1] is None and checked_boxes[-1] is None:
                raise ValueError(f'{where} has no prompt: give a text, points or a box')
        stem = osp.splitext(osp.basename(image))[0] if isinstance(image, str) else f'{i:08d}'
        stem = stem if stem not in stems else f'{stem}_{i}'
        stems.add(stem)
        items.append(dict(img=image, name=name, stem=stem, img_id=i,
                          img_path=image if isinstance(image, str) else None,
                          text=list(expressions), points=checked_points, boxes=checked_boxes))
    return items
