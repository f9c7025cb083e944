"""Semantic label maps as referring segmentation: ``[semantic] {class}`` expressions.

:class:`SemanticReferMixin` turns any mmseg ``BaseSegDataset`` (its listing, class names,
``reduce_zero_label`` and class-subset ``label_map``) into one referring item per image;
:class:`SemanticReferDataset` is ADE20K (mmseg's ``ADE20KDataset``) and
:class:`BaseSemanticReferDataset` any label-map dataset whose classes the config names.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmcv import imfrombytes
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets import ADE20KDataset, BaseSegDataset
from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from .utils import ExpressionModes


class SemanticReferMixin(ExpressionModes):
    """Semantic segmentation turned into text prompts, mixed into an mmseg dataset class.

    The mmseg dataset supplies the file listing (``{img_path}/*{img_suffix}`` with the label
    PNG of the same stem under ``seg_map_path``, or the stems of ``ann_file``), the class names
    and ``reduce_zero_label`` (raw label 0 is ignored, raw k is class k - 1); a ``metainfo``
    with a subset of the classes maps the others to ignored, as in mmseg. Each item is one
    image with one expression ``f'{prompt_prefix}{class name}'`` (EVF-SAM: ``'[semantic]
    wall'``) and one mask (all pixels of that class) per class, in :class:`ReferSegDataset`'s
    format, so the same pipeline (``mmdet.LoadAnnotations`` with masks, ``TokenizeText``,
    ``PackReferInputs``) and ``ReferSegMetric`` apply; one SAM image-encoder pass serves all
    expressions of an image. Items carry ``img_path``, ``seg_map_path``, ``img_id`` (the file
    stem), ``height``, ``width``, ``text`` (list of str) and ``instances`` (one
    ``dict(mask=<COCO RLE of the (height, width) mask, str counts>, bbox_label=<class index>,
    ignore_flag=0)`` per text). Class names are stripped and lower-cased (mmseg writes
    ``'bed '``, Mapillary ``'Street Light'``; the official code lower-cases too).

    - ``text_mode='original'`` (evaluation, the default): every class present in the label map,
      in increasing class index. The label PNGs are read once at start-up; images with no
      labelled pixel are dropped (they have nothing to score) and counted in the log.
    - ``text_mode='random'`` (training): each read decodes the PNG and draws up to
      ``max_expressions`` (EVF-SAM: 3) of the classes present, without replacement, with
      Python's ``random`` like ``ReferSegDataset`` (reproducible under mmengine's seeding, not
      fixed per epoch). An image without labelled pixels yields ``None``, so mmengine's
      ``BaseDataset`` fetches another image (and raises in ``test_mode``).
    - A label value outside ``[0, num_classes]`` (``reduce_zero_label``; else outside
      ``[0, num_classes - 1]`` and not ``ignore_index``), a label PNG with more than one
      channel, or a missing image / label file raises an error naming the file.

    Args:
        text_mode: ``'original'`` or ``'random'``.
        max_expressions: cap on the expressions drawn per read in ``'random'`` mode
            (``None``: every class present).
        prompt_prefix: put before the class name.
        ignore_classes: names of classes that are no referent (Mapillary's ``'Unlabeled'``):
            their pixels are ignored like unlabelled ones.
        check_files: verify at start-up that every image and label file exists (local paths).
        **kwargs: the mmseg dataset's arguments (``data_root``, ``data_prefix``, ``ann_file``,
            ``metainfo``, ``pipeline``, ``reduce_zero_label``, ``backend_args``, ...).
    """

    def __init__(self,
                 text_mode: str = 'original',
                 max_expressions: Optional[int] = None,
                 prompt_prefix: str = '[semantic] ',
                 ignore_classes: Sequence[str] = (),
                 check_files: bool = True,
                 **kwargs) -> None:
        self.set_expression_modes(text_mode, max_expressions)
        self.prompt_prefix = prompt_prefix
        self.ignore_classes = tuple(ignore_classes)
        self.check_files = check_files
        super().__init__(**kwargs)

    def check_classes(self) -> None:
        """Class names are known and ``ignore_classes`` among them; sets ``ignored_indices``
        (indices after any ``label_map``). Runs when the data list is loaded, after mmseg has
        set up ``metainfo``."""
        classes = list(self.metainfo.get('classes') or ())
        if not classes:
            raise ValueError(f'{type(self).__name__} needs class names: '
                             'metainfo=dict(classes=(...))')
        unknown = set(self.ignore_classes) - set(classes)
        if unknown:
            raise ValueError(f'ignore_classes {sorted(unknown)} are not among the classes')
        self.ignored_indices = [classes.index(name) for name in self.ignore_classes]

    def read_label(self, seg_map_path: str) -> np.ndarray:
        """The class index of every pixel, (H, W) int64, ``ignore_index`` where unlabelled.

        Applies ``reduce_zero_label`` and the ``label_map`` of a class subset as mmseg's
        ``LoadAnnotations`` does, after checking the raw values against the class list."""
        try:
            raw = imfrombytes(fileio.get(seg_map_path, backend_args=self.backend_args),
                              flag='unchanged', backend='pillow')
        except FileNotFoundError:
            raise FileNotFoundError(f'label map {seg_map_path} does not exist') from None
        if raw is None or raw.ndim != 2:
            raise ValueError(f'label map {seg_map_path} must be a single-channel PNG, got shape '
                             f'{None if raw is None else raw.shape}')
        # the raw values index the full class list, before any metainfo subset
        num_classes = len(self.METAINFO.get('classes') or self.metainfo['classes'])
        values = np.unique(raw)
        if self.reduce_zero_label:
            bad = values[(values < 0) | (values > num_classes)]
        else:
            bad = values[((values < 0) | (values >= num_classes)) & (values != self.ignore_index)]
        if bad.size:
            valid = f'[0, {num_classes}]' if self.reduce_zero_label else \
                f'[0, {num_classes - 1}] or {self.ignore_index}'
            raise ValueError(f'label map {seg_map_path} has values {bad.tolist()} outside '
                             f'{valid} ({num_classes} classes, reduce_zero_label='
                             f'{self.reduce_zero_label})')
        label = raw.astype(np.int64)
        if self.reduce_zero_label:
            # raw 0 is "other" in ADE20K: ignored; raw k is class k - 1
            label = np.where(label == 0, self.ignore_index, label - 1)
        if self.label_map is not None:
            mapped = np.full_like(label, self.ignore_index)
            for old, new in self.label_map.items():
                mapped[label == old] = new
            label = mapped
        for index in self.ignored_indices:
            label[label == index] = self.ignore_index
        return label

    def present_classes(self, label: np.ndarray) -> List[int]:
        """Class indices with at least one pixel in ``label`` (H, W), increasing."""
        return [int(c) for c in np.unique(label) if c != self.ignore_index]

    def expressions(self, label: np.ndarray, classes: List[int]) -> Dict[str, list]:
        """Texts and masks (COCO RLE, as mmdet's ``LoadAnnotations`` decodes) for ``classes``."""
        names = self.metainfo['classes']
        texts, instances = [], []
        for c in classes:
            rle = mask_utils.encode(np.asfortranarray(label == c, dtype=np.uint8))
            # mmdet's LoadAnnotations accepts RLE counts as str or list only, not bytes
            rle['counts'] = rle['counts'].decode('ascii')
            texts.append(f'{self.prompt_prefix}{names[c].strip().lower()}')
            instances.append(dict(mask=rle, bbox_label=c, ignore_flag=0))
        return dict(text=texts, instances=instances)

    def sample_expressions(self, seg_map_path: str) -> Optional[Dict[str, list]]:
        """A fresh draw for ``text_mode='random'``; ``None`` if no pixel is labelled."""
        label = self.read_label(seg_map_path)
        classes = self.present_classes(label)
        if not classes:
            return None
        classes = self.draw_expressions(classes)
        return self.expressions(label, classes)

    def load_data_list(self) -> List[dict]:
        self.check_classes()
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'no image *{self.img_suffix} in {self.data_prefix.get("img_path")}'
                             + (f' listed by {self.ann_file}' if self.ann_file else ''))
        kept, empty = [], []
        for info in data_list:
            if 'seg_map_path' not in info:
                raise ValueError('data_prefix needs a seg_map_path (the label maps)')
            for key, what in (('img_path', 'image'), ('seg_map_path', 'label map')):
                path = info[key]
                if self.check_files and '://' not in path and not osp.isfile(path):
                    raise FileNotFoundError(f'{what} {path} does not exist')
            info['img_id'] = osp.splitext(osp.basename(info['img_path']))[0]
            if self.text_mode == 'random':
                kept.append(info)
                continue
            # evaluation: decode once here so that the items are fixed and empty images known
            label = self.read_label(info['seg_map_path'])
            classes = self.present_classes(label)
            if not classes:
                empty.append(info['seg_map_path'])
                continue
            info.update(height=label.shape[0], width=label.shape[1])
            info.update(self.expressions(label, classes))
            kept.append(info)
        if empty:
            print_log(f'{type(self).__name__}: dropped {len(empty)} image(s) without labelled '
                      f'pixels, e.g. {empty[0]}', logger='current')
        if not kept:
            raise ValueError(f'no label map under {self.data_prefix.get("seg_map_path")} has a '
                             'labelled pixel')
        return kept

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if self.text_mode == 'random':
            drawn = self.sample_expressions(info['seg_map_path'])
            if drawn is None:
                return None  # BaseDataset refetches another image in training
            info.update(drawn)
            height, width = drawn['instances'][0]['mask']['size']
            info.update(height=height, width=width)
        return self.pipeline(info)


@DATASETS.register_module()
class SemanticReferDataset(SemanticReferMixin, ADE20KDataset):
    """ADE20K as ``[semantic] {class}`` prompts, on mmseg's ``ADE20KDataset``: its layout
    (``images/{training,validation}/*.jpg``, ``annotations/.../*.png``), its 150 class names
    (the same SceneParsing list as the official ``ade20k_classes.json``, e.g.
    ``'windowpane'``, ``'chest of drawers'``) and ``reduce_zero_label=True`` (raw 0 = "other"
    is ignored). See :class:`SemanticReferMixin` for items, modes and errors.

    Args:
        data_root: folder holding ``images/`` and ``annotations/`` (EVF-SAM:
            ``ade20k/``, mmseg: ``data/ade/ADEChallengeData2016/``).
        data_prefix: ``img_path`` and ``seg_map_path`` relative to ``data_root``.
        **kwargs: :class:`SemanticReferMixin`'s and mmseg's arguments.
    """

    def __init__(self,
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(
                     img_path='images/training', seg_map_path='annotations/training'),
                 **kwargs) -> None:
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)


@DATASETS.register_module()
class BaseSemanticReferDataset(SemanticReferMixin, BaseSegDataset):
    """Any label-map dataset in mmseg's layout as ``[semantic] {class}`` prompts, its classes
    named by the config (``metainfo=dict(classes=(...))``, raw value k = class k, or k - 1
    with ``reduce_zero_label=True``), like mmseg's ``BaseSegDataset``. See
    :class:`SemanticReferMixin` for items, modes and errors.

    Args:
        data_root: the dataset folder.
        data_prefix: ``img_path`` and ``seg_map_path`` relative to ``data_root``.
        **kwargs: :class:`SemanticReferMixin`'s and mmseg's arguments (``metainfo``,
            ``img_suffix``, ``seg_map_suffix``, ``reduce_zero_label``, ...).
    """

    def __init__(self,
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(img_path='images', seg_map_path='annotations'),
                 **kwargs) -> None:
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)
