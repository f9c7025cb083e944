from .coco_json import load_coco
from .expression_modes import ExpressionModes
from .safe_pickle import load_refs_pickle

__all__ = ['ExpressionModes', 'load_coco', 'load_refs_pickle']
