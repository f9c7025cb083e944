"""COCO-format part datasets (PartImageNet, PASCAL-Part) as ``[semantic] {object part}`` data."""
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from .utils import ExpressionModes, load_coco


def part_name(name: str) -> str:
    """A category name as EVF-SAM prompts it (reference notes §4.3): PASCAL-Part's
    ``'object:part'`` -> ``'object part'``, lower-cased as for PartImageNet, spaces collapsed."""
    return ' '.join(name.replace(':', ' ').lower().split())


@DATASETS.register_module()
class CocoPartDataset(ExpressionModes, BaseDataset):
    """Part segmentation in COCO format turned into ``[semantic] {part}`` text prompts.

    ``ann_file`` is a COCO json (``images``, ``annotations`` with polygon or RLE
    ``segmentation``, ``categories``); EVF-SAM reads PartImageNet
    (``PartImageNet/annotations/train/train.json``, images ``PartImageNet/images/train``) and
    PASCAL-Part (``vlpart/pascal_part/train.json``, images ``VOCdevkit/VOC2010/JPEGImages``) this
    way. The masks are decoded with pycocotools' COCO api (``annToMask``), and all instances of
    one category in an image are merged into one mask (their union), as the official code sums
    them. The text is ``f'{prompt_prefix}{part_name(category name)}'`` (``'[semantic] person
    hair'`` for ``'person:hair'``). Items follow :class:`SemanticReferDataset`: ``img_path``,
    ``img_id`` (the COCO image id), ``height``, ``width``, ``text`` and ``instances`` (one
    ``dict(mask=<COCO RLE, str counts>, bbox_label=<category index>, ignore_flag=0)`` per
    text), where the category index is the position in ``categories`` sorted by id (the order
    of ``metainfo['classes']``).

    - ``text_mode='original'`` (evaluation, default): every category present in the image, in
      increasing category index; the masks are decoded at start-up and a category whose
      merged mask is empty is left out.
    - ``text_mode='random'`` (training): each read merges up to ``max_expressions`` of the
      categories present, drawn without replacement with Python's ``random``.
    - Images without annotations (or with only empty segmentations) are dropped and counted in
      the log.
    - A json without ``categories``, an annotation naming an unknown category or image, or a
      missing image file raises an error naming the json / file.

    Args:
        ann_file: the COCO json (relative to ``data_root`` unless absolute).
        data_root: root of ``ann_file`` and ``data_prefix``.
        data_prefix: ``img_path``: folder of the images' ``file_name``.
        text_mode: ``'original'`` or ``'random'``.
        max_expressions: cap on the expressions drawn per read in ``'random'`` mode.
        prompt_prefix: put before the part name.
        check_files: verify at start-up that every image file exists (local paths).
        **kwargs: the rest of mmengine's ``BaseDataset`` arguments (``pipeline``,
            ``test_mode``, ...). A ``metainfo`` ``classes`` is replaced by the json's names.
    """

    def __init__(self,
                 ann_file: str = '',
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(img_path=''),
                 text_mode: str = 'original',
                 max_expressions: Optional[int] = None,
                 prompt_prefix: str = '[semantic] ',
                 check_files: bool = True,
                 **kwargs) -> None:
        self.set_expression_modes(text_mode, max_expressions)
        self.prompt_prefix = prompt_prefix
        self.check_files = check_files
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix,
                         **kwargs)

    def merged_mask(self, img: dict, anns: List[dict]) -> np.ndarray:
        """The union of the (H, W) masks of ``anns`` (one category of image ``img``), bool."""
        mask = np.zeros((img['height'], img['width']), bool)
        for ann in anns:
            # annToMask turns polygons / uncompressed RLE into RLE on the image's size
            mask |= self.coco.annToMask(ann).astype(bool)
        return mask

    def expressions(self, info: dict, part_anns: Dict[int, List[dict]],
                    labels: List[int]) -> Dict[str, list]:
        """Texts and merged masks (COCO RLE, str counts) of ``labels`` of image ``info`` (its
        ``height`` / ``width``), given its annotations by label; empty masks are left out."""
        names = self.metainfo['classes']
        texts, instances = [], []
        for label in labels:
            mask = self.merged_mask(info, part_anns[label])
            if not mask.any():
                continue
            rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
            # mmdet's LoadAnnotations accepts RLE counts as str or list only, not bytes
            rle['counts'] = rle['counts'].decode('ascii')
            texts.append(f'{self.prompt_prefix}{names[label]}')
            instances.append(dict(mask=rle, bbox_label=label, ignore_flag=0))
        return dict(text=texts, instances=instances)

    def load_data_list(self) -> List[dict]:
        self.coco = load_coco(self.ann_file)
        cats = sorted(self.coco.dataset['categories'], key=lambda c: c['id'])
        cat2label = {c['id']: i for i, c in enumerate(cats)}
        # metainfo is set before load_data_list runs; the class names come from the json
        self._metainfo['classes'] = tuple(part_name(c['name']) for c in cats)
        img_dir = self.data_prefix.get('img_path', '') or ''
        data_list, empty = [], []
        for img_id in sorted(self.coco.getImgIds()):
            img = self.coco.imgs[img_id]
            img_path = osp.join(img_dir, img['file_name'])
            if self.check_files and '://' not in img_path and not osp.isfile(img_path):
                raise FileNotFoundError(f'image {img_path} (listed by {self.ann_file}) does not '
                                        'exist')
            part_anns = defaultdict(list)
            for ann in self.coco.imgToAnns.get(img_id, []):
                if ann.get('segmentation'):  # an empty segmentation has nothing to merge
                    part_anns[cat2label[ann['category_id']]].append(ann)
            info = dict(img_path=img_path, img_id=img_id, height=img['height'],
                        width=img['width'], part_anns=dict(part_anns))
            if self.text_mode == 'original':
                # evaluation: decode once here so that the items are fixed
                info.update(self.expressions(info, part_anns, sorted(part_anns)))
                del info['part_anns']
                if not info['text']:
                    empty.append(img_path)
                    continue
            elif not part_anns:
                empty.append(img_path)
                continue
            data_list.append(info)
        if empty:
            print_log(f'{type(self).__name__}: dropped {len(empty)} image(s) without part '
                      f'annotations in {self.ann_file}, e.g. {empty[0]}', logger='current')
        if not data_list:
            raise ValueError(f'no image of {self.ann_file} has a part annotation')
        return data_list

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        if self.text_mode == 'random':
            part_anns = info.pop('part_anns')
            labels = self.draw_expressions(sorted(part_anns))
            drawn = self.expressions(info, part_anns, labels)
            if not drawn['text']:
                return None  # only degenerate polygons: BaseDataset refetches another image
            info.update(drawn)
        return self.pipeline(info)

