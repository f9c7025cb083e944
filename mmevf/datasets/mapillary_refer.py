"""Mapillary Vistas as referring segmentation: ``[semantic] {class}`` expressions."""
from typing import Dict, Optional, Sequence

from mmseg.datasets import MapillaryDataset_v2

from mmevf.registry import DATASETS
from .semantic_refer import SemanticReferMixin


@DATASETS.register_module()
class MapillaryReferDataset(SemanticReferMixin, MapillaryDataset_v2):
    """Mapillary Vistas v2.0 as ``[semantic] {class}`` prompts, on mmseg's
    ``MapillaryDataset_v2``.

    The semantic source of EVF-SAM's Tab. 6 besides ADE20K. Its data code (LISA's
    ``init_mapillary``) reads the v2.0 labels: ``training/images/*.jpg`` with the label PNG of
    the same stem in ``training/v2.0/labels/`` (mmseg's layout too), class names = the
    ``readable`` names of ``config_v2.0.json`` lower-cased, which are mmseg's 124 class names
    lower-cased (``'Street Light'`` -> ``'[semantic] street light'``). Label PNGs are
    single-channel (palette mode in the release) with raw value k = class k, no
    ``reduce_zero_label``. Class 123 ``'Unlabeled'`` is no referent: its pixels are ignored
    (``ignore_classes``; the official code may prompt ``'[semantic] unlabeled'``). See
    :class:`SemanticReferMixin` for items, modes and errors (e.g. a label value above 123
    names the file).

    Args:
        data_root: the ``mapillary/`` folder.
        data_prefix: ``img_path`` and ``seg_map_path`` relative to ``data_root``
            (validation: ``validation/images``, ``validation/v2.0/labels``).
        ignore_classes: classes whose pixels are ignored.
        **kwargs: :class:`SemanticReferMixin`'s and mmseg's arguments.
    """

    def __init__(self,
                 data_root: Optional[str] = None,
                 data_prefix: Dict = dict(
                     img_path='training/images', seg_map_path='training/v2.0/labels'),
                 ignore_classes: Sequence[str] = ('Unlabeled', ),
                 **kwargs) -> None:
        super().__init__(data_root=data_root, data_prefix=data_prefix,
                         ignore_classes=ignore_classes, **kwargs)
