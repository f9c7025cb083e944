"""mmevf's bottom layer: helpers with no mmevf dependency, imported by models and datasets."""
from .tokenizer import build_tokenizer

__all__ = ['build_tokenizer']
