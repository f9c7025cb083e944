from .multi_split import MultiSplitDataset
from .refer_seg import ReferSegDataset
from .samplers import *  # noqa: F401,F403
from .semantic_refer import SemanticReferDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['MultiSplitDataset', 'ReferSegDataset', 'SemanticReferDataset']
