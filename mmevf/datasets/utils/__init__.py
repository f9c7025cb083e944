from .expression_modes import ExpressionModes
from .safe_pickle import load_refs_pickle

__all__ = ['ExpressionModes', 'load_refs_pickle']
