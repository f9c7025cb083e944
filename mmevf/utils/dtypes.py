"""The floating-point types mmevf's APIs and command lines accept, under one spelling."""
from typing import Dict, Union

import torch

# command-line and API names -> torch dtypes (configs, after mmengine, and the embedding cache's
# manifest hold torch's own names: :func:`torch_dtype_name`)
DTYPES: Dict[str, torch.dtype] = {
    'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def resolve_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``'fp32'`` / ``'bf16'`` / ``'fp16'`` (or a torch dtype among them) -> the torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')


def torch_dtype_name(dtype: Union[str, torch.dtype]) -> str:
    """``'bf16'`` (or ``torch.bfloat16``) -> ``'bfloat16'``: torch's name, which mmengine's
    ``AmpOptimWrapper(dtype=...)`` takes and the embedding cache's manifest stores."""
    return str(resolve_dtype(dtype)).rpartition('.')[2]
