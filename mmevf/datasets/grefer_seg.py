"""gRefCOCO (GRES / ReLA, CVPR 2023) and SynthRef-G: expressions naming any number of objects."""
import json
from typing import Dict, List, Optional, Tuple, Union

from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from .refer_seg import ReferSegDataset
from .utils import load_refs_pickle

# The mask of a no-target expression: mmdet's own empty polygon (``PolygonMasks.crop`` gives
# it to an object cropped away). ``LoadAnnotations`` keeps it (6 coordinates: a valid
# polygon, ``ignore_flag`` stays 0, so the expression keeps its mask) and it decodes to an
# all-zero mask of the image size, with ``poly2mask`` on or off. An empty list would not do:
# mmdet flags such an instance ignored and ``PackDetInputs`` drops it, so the masks would no
# longer line up with the texts.
EMPTY_POLYGON = [[0.0] * 6]
NO_TARGET = -1  # gRefCOCO's ann_id list of a no-target ref: [-1]


def _rle(segmentation: Union[list, dict], height: int, width: int) -> dict:
    """A COCO segmentation (polygons, uncompressed or compressed RLE) as compressed RLE."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation['counts'], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    counts = segmentation['counts']
    return dict(size=segmentation['size'],
                counts=counts.encode('ascii') if isinstance(counts, str) else counts)


def union_mask(segmentations: List[Union[list, dict]], height: int,
               width: int) -> Union[list, dict]:
    """The union of COCO segmentations as one mask that mmdet's ``LoadAnnotations`` reads.

    Polygons only: their polygons in one list (``LoadAnnotations`` rasterises each and merges
    them, which is the union, and ``poly2mask=False`` still works). Any RLE among them: one
    compressed RLE of the (height, width) image with ``counts`` as str (mmdet accepts str or
    list counts, not pycocotools' bytes).
    """
    if all(isinstance(s, list) for s in segmentations):
        return [polygon for s in segmentations for polygon in s]
    merged = mask_utils.merge([_rle(s, height, width) for s in segmentations])
    return dict(size=[int(v) for v in merged['size']], counts=merged['counts'].decode('ascii'))


@DATASETS.register_module()
class GReferSegDataset(ReferSegDataset):
    """Generalised referring segmentation on ReLA's gRefCOCO layout (and SynthRef-G)::

        <data_root>/grefcoco/grefs(unc).json   refs (or the refer toolkit's .p pickle)
        <data_root>/grefcoco/instances.json    COCO instances
        <data_root>/images/train2014/*.jpg

    A gRef is a RefCOCO ref whose ``ann_id`` is a list: its expressions name every listed
    object, and the target mask is the union of their masks (crowd regions left out, as
    ReLA's ``G_REFER.getMaskByRef``, unless the ref lists only crowd regions). ``ann_id ==
    [-1]`` (ReLA also writes ``no_target: True``) names no object: the mask is empty (all zeros
    at the image size once loaded, see :data:`EMPTY_POLYGON`).

    Everything else is :class:`ReferSegDataset`'s: items are images with all their
    expressions, ``text_mode='original'`` scores every sentence, ``'random'`` draws
    ``num_sentences`` per ref then at most ``max_expressions`` per image. Items gain
    ``no_target`` (list of bool, one per text), which ``PackReferInputs`` packs into the data
    sample's metainfo.

    Errors name the file and the ref: an annotation id that ``instances.json`` lacks, -1 mixed
    with real ids, an empty ``ann_id``, ``no_target: True`` on a ref listing objects, an image
    id that ``instances.json`` lacks; a missing file raises ``FileNotFoundError`` naming it.

    Args:
        data_root: the folder holding ``grefcoco/`` and ``images/``.
        ann_file: COCO instances json, relative to ``data_root``.
        split_file: the refs, ``.json`` (ReLA) or a pickle, relative to ``data_root``.
        data_prefix: ``dict(img_path=...)``; default ``images/train2014/``.
        split: ``'train'``, ``'val'``, ``'testA'`` or ``'testB'``.
        **kwargs: :class:`ReferSegDataset`'s (``text_mode``, ``num_sentences``, ...).
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str = 'grefcoco/instances.json',
                 split_file: str = 'grefcoco/grefs(unc).json',
                 data_prefix: Optional[Dict] = None,
                 split: str = 'train',
                 **kwargs) -> None:
        super().__init__(data_root=data_root, ann_file=ann_file, split_file=split_file,
                         data_prefix=data_prefix or dict(img_path='images/train2014/'),
                         split=split, **kwargs)

    def load_refs(self) -> List[dict]:
        if not self.split_file.endswith('.json'):
            return load_refs_pickle(self.split_file)
        with open(self.split_file) as f:
            try:
                refs = json.load(f)
            except ValueError as error:  # JSONDecodeError
                raise ValueError(f'{self.split_file} is not a refs json: {error}') from None
        if not isinstance(refs, list):
            raise ValueError(f'{self.split_file} holds a {type(refs).__name__}, not a list of refs')
        return refs

    def _target(self, ref: dict, anns: Dict[int, dict]) -> Tuple[List[int], bool]:
        """``ref``'s annotation ids (a list) and whether it names no object, checked."""
        ann_ids = ref['ann_id'] if isinstance(ref['ann_id'], list) else [ref['ann_id']]
        where = f'{self.split_file}: ref {ref["ref_id"]}'
        if not ann_ids:
            raise ValueError(f'{where} has an empty ann_id list (a no-target ref lists [-1])')
        no_target = NO_TARGET in ann_ids
        if no_target and len(ann_ids) > 1:
            raise ValueError(f'{where} mixes no target (-1) with annotations {ann_ids}')
        if ref.get('no_target', False) and not no_target:
            raise ValueError(f'{where} is marked no_target but lists annotations {ann_ids}')
        missing = [ann_id for ann_id in ann_ids if ann_id != NO_TARGET and ann_id not in anns]
        if missing:
            raise ValueError(f'{where} points to annotation(s) {missing}, which {self.ann_file} '
                             'does not have')
        return ann_ids, no_target

    def parse_ref(self, ref: dict, anns: Dict[int, dict], image: dict) -> dict:
        ann_ids, no_target = self._target(ref, anns)
        if no_target:
            mask = [list(polygon) for polygon in EMPTY_POLYGON]  # a copy: items may be edited
        else:
            targets = [anns[ann_id] for ann_id in ann_ids]
            # crowd regions are not objects of the union (ReLA) unless they are all it has
            targets = [a for a in targets if not a.get('iscrowd', 0)] or targets
            mask = union_mask([a['segmentation'] for a in targets], image['height'],
                              image['width'])
        return dict(ref_id=ref['ref_id'], ann_id=ann_ids, mask=mask, no_target=no_target,
                    sentences=self._sentences(ref))

    def pack_expressions(self, pool: List[Tuple[dict, str]]) -> Dict[str, list]:
        """``ReferSegDataset``'s ``text`` and ``instances`` plus ``no_target`` (bool each)."""
        packed = super().pack_expressions(pool)
        packed['no_target'] = [ref['no_target'] for ref, _ in pool]
        return packed
