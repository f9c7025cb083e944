"""One dtype spelling for APIs and command lines (fp32 / bf16 / fp16), torch's for configs and
the embedding cache's manifest."""
import pytest
import torch

from mmevf.utils import DTYPES, resolve_dtype, torch_dtype_name


@pytest.mark.parametrize('name, dtype, torch_name', [('fp32', torch.float32, 'float32'),
                                                     ('bf16', torch.bfloat16, 'bfloat16'),
                                                     ('fp16', torch.float16, 'float16')])
def test_names(name, dtype, torch_name):
    assert DTYPES[name] is resolve_dtype(name) is resolve_dtype(dtype) is dtype
    assert torch_dtype_name(name) == torch_dtype_name(dtype) == torch_name


@pytest.mark.parametrize('bad', ['bfloat16', 'float32', 'int8', torch.float64])
def test_other_spellings_are_refused(bad):
    with pytest.raises(ValueError, match='dtype must be one of'):
        resolve_dtype(bad)
