"""mmevf's plain referring-segmentation format: one JSON Lines file per split, one line per image
(docs/user_guides/custom_data.md). Read by :class:`mmevf.datasets.JsonlReferSegDataset`,
written by the converters of ``tools/dataset_converters/`` (``*2jsonl.py``); both check a line
with :func:`check_line`, so a converter never writes a line the dataset would refuse."""
import json
import os.path as osp
from collections import Counter
from numbers import Real
from typing import Any, Dict, Iterable, List, Optional, Tuple

import mmengine
from PIL import Image

from mmevf.checkpoint.atomic_backend import ATOMIC_BACKEND_ARGS

LINE_KEYS = {'image', 'id', 'height', 'width', 'objects', 'expressions'}
OBJECT_KEYS = {'mask', 'expressions'}
GROUP_KEYS = {'text', 'objects'}  # a top-level expression: several objects or none


def _check_text(text: Any, where: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'{where}: an expression must be a non-empty string, got {text!r}')


def _check_keys(entry: Any, allowed: set, required: set, where: str) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f'{where} must be a JSON object, got {type(entry).__name__}')
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f'{where} has unknown key(s) {unknown} (allowed: {sorted(allowed)})')
    missing = sorted(required - set(entry))
    if missing:
        raise ValueError(f'{where} lacks key(s) {missing}')


def _check_size(value: Any, name: str, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f'{where}: {name} must be a positive integer, got {value!r}')


def check_mask(mask: Any, where: str) -> None:
    """A mask as the format allows it: polygons, a COCO RLE dict or a PNG path (the size of an
    RLE or a PNG against the image is checked where the image size is known)."""
    if isinstance(mask, str):
        if not mask.strip():
            raise ValueError(f'{where}: an empty mask path')
        return
    if isinstance(mask, dict):
        _check_keys(mask, {'size', 'counts'}, {'size', 'counts'}, f'{where} (an RLE mask)')
        size = mask['size']
        if not (isinstance(size, list) and len(size) == 2):
            raise ValueError(f'{where}: an RLE size must be [height, width], got {size!r}')
        for value in size:
            _check_size(value, 'an RLE size', where)
        counts = mask['counts']
        if not isinstance(counts, (str, list)):
            raise ValueError(f'{where}: RLE counts must be a string or a list of integers')
        # pycocotools does not check uncompressed counts: runs that do not cover the image
        # exactly would decode to garbage rather than fail
        if isinstance(counts, list) and not (
                all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
                and sum(counts) == size[0] * size[1]):
            raise ValueError(f'{where}: uncompressed RLE counts must be non-negative integers '
                             f'summing to height * width = {size[0] * size[1]}')
        return
    if not isinstance(mask, list) or not mask:
        raise ValueError(f'{where}: a mask is a list of polygons, an RLE dict or a PNG path, '
                         f'got {mask!r:.80}')
    for polygon in mask:
        if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                or not all(isinstance(v, Real) and not isinstance(v, bool) for v in polygon)):
            raise ValueError(f'{where}: a polygon is a flat list of at least 3 (x, y) points, '
                             f'got {polygon!r:.80}')


def check_line(line: Any, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` (e.g. ``'train.jsonl:12'``) and the offending
    object or key if ``line`` (a parsed JSON line) is not an image line of the format."""
    _check_keys(line, LINE_KEYS, {'image', 'objects'}, where)
    if not isinstance(line['image'], str) or not line['image'].strip():
        raise ValueError(f'{where}: "image" must be a non-empty path, got {line["image"]!r}')
    for name in ('height', 'width'):
        if name in line:
            _check_size(line[name], f'"{name}"', where)
    if 'id' in line and not (isinstance(line['id'], int) and not isinstance(line['id'], bool)
                             and line['id'] >= 0):
        raise ValueError(f'{where}: "id" must be a non-negative integer, got {line["id"]!r}')
    if ('height' in line) != ('width' in line):
        raise ValueError(f'{where}: give both "height" and "width" or neither')
    objects = line['objects']
    if not isinstance(objects, list):
        raise ValueError(f'{where}: "objects" must be a list')
    for i, obj in enumerate(objects):
        at = f'{where} object {i}'
        _check_keys(obj, OBJECT_KEYS, {'mask'}, at)
        check_mask(obj['mask'], at)
        texts = obj.get('expressions', [])
        if not isinstance(texts, list):
            raise ValueError(f'{at}: "expressions" must be a list of strings')
        for text in texts:
            _check_text(text, at)
    groups = line.get('expressions', [])
    if not isinstance(groups, list):
        raise ValueError(f'{where}: the top-level "expressions" must be a list')
    for i, group in enumerate(groups):
        at = f'{where} expression {i}'
        _check_keys(group, GROUP_KEYS, GROUP_KEYS, at)
        _check_text(group['text'], at)
        targets = group['objects']
        if not isinstance(targets, list) or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in targets):
            raise ValueError(f'{at}: "objects" must be a list of object indices')
        bad = [t for t in targets if not 0 <= t < len(objects)]
        if bad or len(set(targets)) != len(targets):
            raise ValueError(f'{at}: object indices {targets} must be distinct and name one of '
                             f'the line\'s {len(objects)} objects')


def read_jsonl_numbered(path: str) -> List[Tuple[int, dict]]:
    """``(line number, checked image line)`` of ``path``, numbers 1-based as an editor shows
    them (blank lines skipped, so a reader can still name ``path:number``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file {path} does not exist')
    lines = []
    with open(path, encoding='utf-8') as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f'{path}:{number}'
            try:
                line = json.loads(text)
            except ValueError as error:
                raise ValueError(f'{where} is not a JSON object: {error}') from None
            check_line(line, where)
            lines.append((number, line))
    return lines


def read_jsonl(path: str) -> List[dict]:
    """The checked image lines of ``path`` (blank lines skipped); errors name file and line."""
    return [line for _, line in read_jsonl_numbered(path)]


def unique_texts(texts: Iterable[str]) -> List[str]:
    """``texts`` stripped, empty ones and repeats dropped, the first spelling kept: the dataset
    lower-cases every text, so 'Dog' and 'dog' would be one expression twice."""
    seen, kept = set(), []
    for text in texts:
        text = text.strip()
        if text and text.lower() not in seen:
            seen.add(text.lower())
            kept.append(text)
    return kept


def image_size(path: str, name: Optional[str] = None) -> Tuple[int, int]:
    """(height, width) of the image file ``path`` from its header (PIL's lazy open decodes no
    pixel); ``ValueError`` naming ``name`` (if given) and the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise
    except OSError as error:  # PIL.UnidentifiedImageError is an OSError
        where = f'{name}: ' if name else ''
        raise ValueError(f'{where}image {path} cannot be read ({error})') from None
    return height, width


def write_jsonl(path: str, lines: Iterable[dict]) -> int:
    """Check every line, then write them all to ``path`` at once (mmevf's atomic backend: a
    temporary file renamed over ``path``, so an interrupted run leaves the old file or none).
    Returns the number of lines written."""
    texts = []
    for number, line in enumerate(lines, 1):
        check_line(line, f'{path}:{number} (to be written)')
        texts.append(json.dumps(line, ensure_ascii=False, separators=(',', ':')))
    mmengine.put_text(''.join(t + '\n' for t in texts), path, backend_args=ATOMIC_BACKEND_ARGS)
    return len(texts)


class ConversionReport:
    """What a converter kept and dropped: ``drop(reason, where)`` per dropped thing, counted
    by reason; ``summary()`` is the lines a converter prints (and ``--report`` writes)."""

    def __init__(self) -> None:
        self.kept: Counter = Counter()
        self.dropped: Dict[str, List[str]] = {}

    def keep(self, what: str, count: int = 1) -> None:
        self.kept[what] += count

    def drop(self, reason: str, where: str) -> None:
        self.dropped.setdefault(reason, []).append(where)

    def summary(self, examples: Optional[int] = 3) -> str:
        lines = ['kept ' + ', '.join(f'{n} {what}' for what, n in self.kept.items())
                 if self.kept else 'kept nothing']
        for reason, wheres in self.dropped.items():
            shown = wheres if examples is None else wheres[:examples]
            more = '' if len(shown) == len(wheres) else f', ... ({len(wheres) - len(shown)} more)'
            lines.append(f'dropped {len(wheres)}: {reason} ({", ".join(shown)}{more})')
        return '\n'.join(lines)
