"""The floating-point types mmevf's APIs and command lines accept, under one spelling."""
from typing import Dict, Union

import torch

# command-line and API names -> torch dtypes (the names the embedding cache's manifest stores
# are torch's own: ``str(dtype)``)
DTYPES: Dict[str, torch.dtype] = {
    'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def resolve_dtype(dtype: Union[str, torch.dtype]) -> torch.dtype:
    """``'fp32'`` / ``'bf16'`` / ``'fp16'`` (or a torch dtype among them) -> the torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
