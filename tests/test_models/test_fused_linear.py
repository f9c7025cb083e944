"""fused_linear equals F.linear (+ GELU / + residual) in fp32 and bf16 on whatever CPU runs it:
oneDNN where it applies, F.linear elsewhere (bf16 on an AVX2-only CPU, where oneDNN cannot
build a bf16 linear)."""
import importlib

import pytest
import torch
import torch.nn.functional as F

from mmevf.models.layers.fused_linear import fused_linear

# the module, not the function of the same name that mmevf.models.layers exports
module = importlib.import_module('mmevf.models.layers.fused_linear')


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize('variant', ['plain', 'gelu', 'residual'])
def test_equals_f_linear(dtype, tol, variant):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, dtype=dtype)
    weight, bias = torch.randn(24, 16, dtype=dtype) / 4, torch.randn(24, dtype=dtype)
    residual = torch.randn(2, 5, 24, dtype=dtype) if variant == 'residual' else None
    gelu = 'none' if variant == 'gelu' else None
    with torch.no_grad():
        out = fused_linear(x, weight, bias, gelu=gelu, residual=residual)
        expected = F.linear(x.float(), weight.float(), bias.float())
        if gelu:
            expected = F.gelu(expected)
        if residual is not None:
            expected = expected + residual.float()
    assert out.dtype == dtype and out.shape == (2, 5, 24)
    torch.testing.assert_close(out.float(), expected, atol=tol * expected.abs().max().item(),
                               rtol=0)


def test_bf16_onednn_only_where_the_cpu_has_it():
    supported = module.ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert (torch.bfloat16 in module.ONEDNN_DTYPES) == supported
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    weight = torch.randn(4, 8, dtype=torch.bfloat16)
    assert module._onednn_applies(x, weight, None, None) == supported
    assert module._onednn_applies(x.float(), weight.float(), None, None) == module.ONEDNN_LINEAR
