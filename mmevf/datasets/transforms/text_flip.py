"""Horizontal flip that keeps the referring expressions true."""
import re

from mmdet.datasets.transforms import RandomFlip

from mmevf.registry import TRANSFORMS

# left <-> right in the forms referring expressions use ("leftmost", "left-hand", "lefthand")
_SIDE_WORD = re.compile(r'\b(left|right)(most|hand|handed|side|ward|wards|-hand|-most|-side)?\b',
                        re.IGNORECASE)


def swap_left_right(text: str) -> str:
    """``'the man left of the rightmost car'`` -> ``'the man right of the leftmost car'``."""

    def swap(match: re.Match) -> str:
        side, suffix = match.group(1), match.group(2) or ''
        other = 'right' if side.lower() == 'left' else 'left'
        if side.isupper():
            other = other.upper()
        elif side[0].isupper():
            other = other.capitalize()
        return other + suffix

    return _SIDE_WORD.sub(swap, text)


@TRANSFORMS.register_module()
class TextAwareRandomFlip(RandomFlip):
    """mmdet's ``RandomFlip`` restricted to horizontal flips, which also swaps "left" and
    "right" (and their forms) in every expression, so image, masks and text stay consistent.

    Required keys: ``img``, ``text``; optional ``gt_masks``, ``gt_bboxes``, ``gt_seg_map``.
    Modified keys: those, plus ``flip`` / ``flip_direction``.

    Args:
        prob: probability of flipping.
    """

    def __init__(self, prob: float = 0.5) -> None:
        super().__init__(prob=prob, direction='horizontal')

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        text = results['text']
        results['text'] = swap_left_right(text) if isinstance(text, str) else [
            swap_left_right(t) for t in text
        ]
