"""mmevf's bottom layer: helpers with no mmevf dependency, imported by models and datasets."""
from .dtypes import DTYPES, resolve_dtype, torch_dtype_name
from .tokenizer import build_tokenizer

__all__ = ['DTYPES', 'build_tokenizer', 'resolve_dtype', 'torch_dtype_name']
