from .coco_parts import CocoPartDataset
from .grefer_seg import GReferSegDataset
from .human_parsing import HumanParsingDataset
from .jsonl_refer_seg import JsonlReferSegDataset
from .mapillary_refer import MapillaryReferDataset
from .multi_split import MultiSplitDataset
from .objects365 import ObjectsInstanceDataset
from .refer_seg import ReferSegDataset
from .samplers import *  # noqa: F401,F403
from .semantic_refer import BaseSemanticReferDataset, SemanticReferDataset, SemanticReferMixin
from .transforms import *  # noqa: F401,F403

__all__ = [
    'BaseSemanticReferDataset', 'CocoPartDataset', 'GReferSegDataset', 'HumanParsingDataset',
    'JsonlReferSegDataset', 'MapillaryReferDataset', 'MultiSplitDataset', 'ObjectsInstanceDataset',
    'ReferSegDataset', 'SemanticReferDataset', 'SemanticReferMixin'
]
