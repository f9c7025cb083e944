"""Human parsing (ATR layout) as referring segmentation: ``[semantic] {part}`` expressions."""
from typing import Dict, Optional

from mmevf.registry import DATASETS
from .semantic_refer import BaseSemanticReferDataset

# The official EVF-SAM humanparsing table (/work/shared/reference/evf_sam.md §4.3): raw label k of
# an ATR label PNG is ATR_LABELS[k]. Left / right are already given in the viewer's perspective
# ("left" = left side of the picture, as in RefCOCO; the official code reversed ATR's person-centric
# sides) and ATR's "Left-leg"-style names are normalised to "left leg".
ATR_LABELS = ('background', 'hat', 'hair', 'sunglasses', 'upper clothes', 'skirt', 'pants',
              'dress', 'belt', 'right shoe', 'left shoe', 'face', 'right leg', 'left leg',
              'right arm', 'left arm', 'bag', 'scarf')


@DATASETS.register_module()
class HumanParsingDataset(BaseSemanticReferDataset):
    """ATR-style human parsing turned into ``[semantic] {part}`` text prompts.

    Layout (EVF-SAM's ``humanparsing/``): ``JPEGImages/*.jpg`` with the single-channel label PNG
    of the same stem in ``SegmentationClassAug/``; raw values 0..17 index :data:`ATR_LABELS`.
    Background (raw 0) is ignored (``reduce_zero_label``: raw k is class k - 1 of the 17 parts),
    unlike the official code, which may sample it, because "background" is no part to refer
    to. Everything else is the ``SemanticReferMixin``'s: the item format (``text``,
    ``instances`` with one COCO RLE per text, ``bbox_label`` = part index), ``text_mode``
    ``'original'`` (every part present) / ``'random'`` (up to ``max_expressions`` per read), a
    ``metainfo`` subset of the parts, and errors naming the file (a label value above 17, a
    missing image or label PNG).

    Args:
        data_root: the ``humanparsing/`` folder.
        data_prefix: ``img_path`` and ``seg_map_path`` relative to ``data_root``.
        **kwargs: the ``SemanticReferMixin``'s arguments (``text_mode``,
            ``max_expressions``, ``prompt_prefix``, ``ann_file``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=ATR_LABELS[1:])

    def __init__(self,
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(img_path='JPEGImages',
                                          seg_map_path='SegmentationClassAug'),
                 **kwargs) -> None:
        # the 17 part names assume raw 0 = background is dropped and raw k is part k - 1
        if not kwargs.setdefault('reduce_zero_label', True):
            raise ValueError('HumanParsingDataset needs reduce_zero_label=True')
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)
