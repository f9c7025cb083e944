"""Referring segmentation from mmevf's plain JSON Lines format (one ``.jsonl`` per split)."""
import io
import logging
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import mmengine
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from PIL import Image
from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from .grefer_seg import EMPTY_POLYGON, GReferSegDataset, union_mask
from .utils.jsonl_format import image_size, read_jsonl_numbered

TEXT_MODES = ('original', 'random', 'select_first', 'concat')
# a mask PNG: one channel (binary, grey, palette indices, 16-bit) or RGB, non-zero = object
MASK_PNG_MODES = ('1', 'L', 'P', 'I', 'I;16', 'RGB')

Mask = Union[list, dict]  # polygons, or COCO compressed RLE with str counts


def _read_bytes_or_path(path: str) -> Union[str, io.BytesIO]:
    """What ``PIL.Image.open`` reads: the local path, or the bytes of a remote one."""
    return io.BytesIO(mmengine.fileio.get(path)) if '://' in path else path


@DATASETS.register_module()
class JsonlReferSegDataset(GReferSegDataset):
    """Referring segmentation on one split of mmevf's plain format
    (``docs/user_guides/custom_data.md``): one JSON object per line, one line per image::

        <data_root>/train.jsonl                 one split (``ann_file``)
        <data_root>/<image paths of its lines>  relative to data_root + data_prefix['img_path']
        <data_root>/<mask PNG paths, if any>    relative to the same root

        {"image": "images/0001.jpg", "id": 1, "height": 480, "width": 640,
         "objects": [{"mask": [[x1, y1, x2, y2, x3, y3, ...]], "expressions": ["left man"]},
                     {"mask": {"size": [480, 640], "counts": "..."}},
                     {"mask": "masks/0001_2.png", "expressions": ["the dog"]}],
         "expressions": [{"text": "both", "objects": [0, 1]},
                         {"text": "the red car", "objects": []}]}

    One item is one image line with every expression of it, as :class:`ReferSegDataset`'s; its
    "refs" are each object with expressions (its expressions are the ref's sentences, its mask
    the target), then each top-level expression (one sentence; the target is the union of the
    listed objects' masks, or no target: an empty mask and ``no_target=True``). The text modes,
    the fresh draws of ``'random'`` (``num_sentences`` per ref, then at most
    ``max_expressions`` per image) and the ``no_target`` list are :class:`GReferSegDataset`'s,
    so its items are theirs: ``img_path``, ``img_id`` (the line's ``id``, else its 0-based
    index among the file's non-blank lines), ``height``, ``width``, and ``refs`` (``'random'``)
    or ``text`` + ``instances`` + ``no_target``.

    Read at start-up and checked, every error naming ``file:line`` (and the object index or
    image): each line's keys (:func:`~mmevf.datasets.utils.jsonl_format.check_line`), unique
    ids, the image size (``height`` / ``width`` or, absent, the image header, read by PIL
    without decoding; given and different from the header's: an error), RLE and PNG masks of
    another size than the image. Mask PNGs are read once here and kept as compressed RLE;
    uncompressed RLE is compressed, so every mask reaches mmdet's ``LoadAnnotations`` as
    polygons or RLE with str counts. Lines without any expression are left out (one warning);
    a file without any expression is an error.

    Args:
        data_root: the folder holding ``ann_file`` (and, by default, the images).
        ann_file: the split's ``.jsonl``, relative to ``data_root``.
        data_prefix: ``dict(img_path=...)``: where image and mask paths start, relative to
            ``data_root``; default ``''`` (the paths are relative to ``data_root``).
        text_mode: ``'original'``, ``'random'``, ``'select_first'`` or ``'concat'``.
        num_sentences: sentences drawn per ref in ``'random'`` mode (``None``: all).
        max_expressions: cap on the expressions of one image in ``'random'`` mode.
        check_files: verify at start-up that every image exists (local paths) and that a given
            ``height`` / ``width`` is the header's (one header read per image). Off, an image is
            opened only when its line gives no size.
        **kwargs: ``BaseDataset``'s (``pipeline``, ``serialize_data``, ``lazy_init``, ...).
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str,
                 data_prefix: Optional[Dict] = None,
                 text_mode: str = 'original',
                 num_sentences: Optional[int] = 1,
                 max_expressions: Optional[int] = None,
                 check_files: bool = True,
                 **kwargs) -> None:
        if text_mode not in TEXT_MODES:
            raise ValueError(f'text_mode must be one of {TEXT_MODES}, got {text_mode!r}')
        # what ReferSegDataset's machinery reads (RefCocoDataset.__init__ would also want a
        # split_file and a split, which a .jsonl split has no use for)
        self.text_mode = text_mode
        self.num_sentences = num_sentences
        self.max_expressions = max_expressions
        self.check_files = check_files
        BaseDataset.__init__(self, data_root=data_root, ann_file=ann_file,
                             data_prefix=data_prefix or dict(img_path=''), **kwargs)

    def _join_prefix(self) -> None:
        BaseDataset._join_prefix(self)  # RefCocoDataset's also joins its split_file

    def _image_size(self, img_path: str, where: str) -> Tuple[int, int]:
        """(height, width) from the image's header: PIL's lazy open decodes no pixel."""
        try:
            return image_size(_read_bytes_or_path(img_path), where)
        except FileNotFoundError:
            raise FileNotFoundError(f'{where}: image {img_path} does not exist') from None

    def _png_mask(self, path: str, size: Tuple[int, int], where: str) -> dict:
        """The PNG at ``path`` (non-zero pixels: the object) as compressed RLE, str counts."""
        try:
            with Image.open(_read_bytes_or_path(path)) as png:
                if png.mode not in MASK_PNG_MODES:
                    raise ValueError(f'{where}: mask {path} is a {png.mode} image; a mask PNG '
                                     'is single-channel or RGB')
                pixels = np.asarray(png)
        except FileNotFoundError:
            raise FileNotFoundError(f'{where}: mask {path} does not exist') from None
        except OSError as error:
            raise ValueError(f'{where}: mask {path} cannot be read ({error})') from None
        if pixels.shape[:2] != size:
            raise ValueError(f'{where}: mask {path} is {pixels.shape[0]}x{pixels.shape[1]}, '
                             f'the image {size[0]}x{size[1]}')
        binary = pixels.any(axis=2) if pixels.ndim == 3 else pixels != 0
        rle = mask_utils.encode(np.asfortranarray(binary, dtype=np.uint8))
        return dict(size=list(size), counts=rle['counts'].decode('ascii'))

    def _object_mask(self, mask: Union[list, dict, str], size: Tuple[int, int], img_path: str,
                     where: str) -> Mask:
        """An object's mask as ``LoadAnnotations`` reads it: polygons as they are, RLE (size
        checked) with str counts, a PNG path read into RLE."""
        if isinstance(mask, list):
            return mask
        if isinstance(mask, str):
            join_path = mmengine.fileio.get_file_backend(self.data_prefix['img_path']).join_path
            return self._png_mask(join_path(self.data_prefix['img_path'], mask), size,
                                  f'{where} (image {img_path})')
        if tuple(mask['size']) != size:
            raise ValueError(f'{where}: RLE size {mask["size"]} is not the size '
                             f'{list(size)} of image {img_path}')
        if isinstance(mask['counts'], list):  # uncompressed: compress once, here
            rle = mask_utils.frPyObjects(mask, *size)
            return dict(size=list(size), counts=rle['counts'].decode('ascii'))
        return dict(size=list(size), counts=mask['counts'])

    def parse_line(self, line: dict, where: str, img_path: str) -> Tuple[int, int, List[dict]]:
        """The image size and the refs of a line (``where``: ``file:line``) that has at least
        one expression: each ref a dict of ``sentences`` (stripped, lower-cased), ``mask``,
        ``no_target`` and ``objects`` (the indices of the line's objects it names)."""
        given = (line['height'], line['width']) if 'height' in line else None
        # a remote image would be fetched whole for its header: its given size is trusted
        if given is None or (self.check_files and '://' not in img_path):
            header = self._image_size(img_path, where)
            if given is not None and given != header:
                raise ValueError(f'{where}: height x width {given[0]}x{given[1]} differ from '
                                 f'the {header[0]}x{header[1]} of image {img_path}')
            size = header
        else:
            size = given
        masks = [self._object_mask(obj['mask'], size, img_path, f'{where} object {i}')
                 for i, obj in enumerate(line['objects'])]
        refs = []
        for i, obj in enumerate(line['objects']):
            sentences = [text.strip().lower() for text in obj.get('expressions', [])]
            if sentences:
                refs.append(dict(objects=[i], mask=masks[i], no_target=False,
                                 sentences=sentences))
        for group in line.get('expressions', []):
            targets = group['objects']
            if targets:
                mask = union_mask([masks[i] for i in targets], *size)
            else:
                mask = [list(polygon) for polygon in EMPTY_POLYGON]  # a copy: items may be edited
            refs.append(dict(objects=list(targets), mask=mask, no_target=not targets,
                             sentences=[group['text'].strip().lower()]))
        return size[0], size[1], refs

    def load_data_list(self) -> List[dict]:
        lines = read_jsonl_numbered(self.ann_file)
        join_path = mmengine.fileio.get_file_backend(self.data_prefix['img_path']).join_path
        first_line_of: Dict[int, int] = {}  # image id -> line number
        silent, data_list = [], []
        for index, (number, line) in enumerate(lines):
            where = f'{self.ann_file}:{number}'
            img_id = line.get('id', index)
            if img_id in first_line_of:
                raise ValueError(f'{where}: id {img_id} is already the id of line '
                                 f'{first_line_of[img_id]}')
            first_line_of[img_id] = number
            if not (line.get('expressions') or any(o.get('expressions') for o in line['objects'])):
                silent.append(number)  # nothing to train or score on: its files are not needed
                continue
            img_path = join_path(self.data_prefix['img_path'], line['image'])
            if self.check_files and '://' not in img_path and not osp.isfile(img_path):
                raise FileNotFoundError(f'{where}: image {img_path} does not exist')
            height, width, refs = self.parse_line(line, where, img_path)
            info = dict(img_path=img_path, img_id=img_id, height=height, width=width)
            if self.text_mode == 'random':
                info['refs'] = refs
            else:
                info.update(self._fixed_expressions(refs))
            data_list.append(info)
        if silent:
            shown = ', '.join(map(str, silent[:5])) + (', ...' if len(silent) > 5 else '')
            print_log(f'{self.ann_file}: left out {len(silent)} image line(s) without any '
                      f'expression (line {shown})', logger='current', level=logging.WARNING)
        if not data_list:
            raise ValueError(f'{self.ann_file} has no expression (no image line with an '
                             'object expression or a top-level expression)')
        return data_list
