from .multi_split import MultiSplitDataset
from .refer_seg import ReferSegDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['MultiSplitDataset', 'ReferSegDataset']
