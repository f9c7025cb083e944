from .safe_pickle import load_refs_pickle

__all__ = ['load_refs_pickle']
