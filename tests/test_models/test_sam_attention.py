"""The attention core shared by SAMImageEncoder and DITTextInjector (mmevf.models.sam.attention)
against segment_anything's own Attention / Block / ImageEncoderViT on the same weights."""
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import (Block, ImageEncoderViT,
                                                     add_decomposed_rel_pos, window_partition,
                                                     window_unpartition)

from mmevf.models.sam import SAMImageEncoder
from mmevf.models.sam import attention as core


def randomise(module: nn.Module, std: float = 0.05) -> nn.Module:
    """Every parameter off its init, the (zero-initialised) rel-pos tables included."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, std)
    return module


def make_block(dim=64, heads=4, window=14, grid=20, dtype=torch.float64) -> Block:
    block = Block(dim, heads, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6),
                  use_rel_pos=True, window_size=window, input_size=(grid, grid))
    return randomise(block).to(dtype).eval()


def reference_attention(q, k, v, scale, rel_pos, size, extra_k=None, extra_v=None, mask=None):
    """SAM's logits (add_decomposed_rel_pos) with extra keys appended at zero bias, -inf where
    masked, softmax, values: the naive (N, N) form."""
    b, heads, n, d = q.shape
    logits = (q * scale) @ k.transpose(-2, -1)
    logits = add_decomposed_rel_pos(logits.reshape(b * heads, n, n), q.reshape(b * heads, n, d),
                                     *rel_pos, size, size).reshape(b, heads, n, n)
    if extra_k is not None:
        extra = (q * scale) @ extra_k.transpose(-2, -1)
        if mask is not None:
            extra = extra.masked_fill(~mask, float('-inf'))
        logits, v = torch.cat([logits, extra], -1), torch.cat([v, extra_v], 2)
    return logits.softmax(-1) @ v


@pytest.mark.parametrize('size, max_bias', [((14, 14), core.MAX_BIAS_ELEMENTS),
                                            ((9, 11), 3 * 99 * 7),  # 15 query blocks
                                            ((6, 5), 1)])  # one query per block
def test_rel_pos_attention_equals_sam_logits(size, max_bias):
    torch.manual_seed(0)
    b, heads, d = 3, 2, 8
    n = size[0] * size[1]
    q, k, v = (torch.randn(b, heads, n, d, dtype=torch.float64) for _ in range(3))
    rel_pos = (torch.randn(2 * size[0] - 1, d, dtype=torch.float64),
               torch.randn(2 * size[1] - 1, d, dtype=torch.float64))
    out = core.rel_pos_attention(q, k, v, d**-0.5, rel_pos, size, max_bias_elements=max_bias)
    torch.testing.assert_close(out, reference_attention(q, k, v, d**-0.5, rel_pos, size),
                               atol=1e-12, rtol=0)
    # extra keys (DIT's text): zero rel-pos bias, masked ones ignored, with and without autograd
    ek, ev = torch.randn(b, heads, 4, d, dtype=torch.float64), torch.randn(b, heads, 4, d,
                                                                           dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    mask = mask[:, None, None, :]
    ref = reference_attention(q, k, v, d**-0.5, rel_pos, size, ek, ev, mask)
    for grad in (False, True):
        tables = tuple(t.clone().requires_grad_(grad) for t in rel_pos)
        out = core.rel_pos_attention(q, k, v, d**-0.5, tables, size, ek, ev, mask,
                                     max_bias_elements=max_bias)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    out.sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in tables)


def test_no_rel_pos_and_no_n_by_n_bias(monkeypatch):
    """Without tables: one plain SDPA call; with them, no mask larger than the budget."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 8) for _ in range(3))
    torch.testing.assert_close(core.rel_pos_attention(q, k, v, 0.3),
                               F.scaled_dot_product_attention(q, k, v, scale=0.3))
    masks = []
    sdpa = F.scaled_dot_product_attention

    def recording(*args, attn_mask=None, **kwargs):
        masks.append(attn_mask.numel())
        return sdpa(*args, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(core.F, 'scaled_dot_product_attention', recording)
    rel_pos = (torch.randn(15, 8), torch.randn(15, 8))
    core.rel_pos_attention(q, k, v, 0.3, rel_pos, (8, 8), max_bias_elements=1000)
    assert len(masks) == 10 and max(masks) <= 1000  # 2 heads x 7 queries x 64 keys per call


@pytest.mark.parametrize('window, grid, table_grid', [
    (14, 20, 20),  # windows with padding (20 -> 28)
    (7, 14, 14),  # windows without padding
    (0, 20, 20),  # global
    (0, 20, 14),  # a window block's tables over the whole grid (DIT all_global): interpolated
])
def test_sam_attention_and_block_equal_segment_anything(window, grid, table_grid):
    blk = make_block(window=window or table_grid, grid=table_grid)
    blk.window_size = window
    torch.manual_seed(1)
    x = torch.randn(2, grid, grid, 64, dtype=torch.float64)
    with torch.no_grad():
        xn = blk.norm1(x)
        if window:
            windows, pad_hw = window_partition(xn, window)
            ref = window_unpartition(blk.attn(windows), window, pad_hw, (grid, grid))
        else:
            ref = blk.attn(xn)
        torch.testing.assert_close(core.sam_attention(blk.attn, xn, window), ref, atol=1e-12,
                                   rtol=0)
        torch.testing.assert_close(core.sam_block(blk, x), blk(x), atol=1e-12, rtol=0)
        assert torch.equal(x, x.clone())  # the input is not modified in place
    # with autograd: the same output and gradients for every parameter
    grads = []
    for fn in (blk, partial(core.sam_block, blk)):
        blk.zero_grad()
        xg = x.clone().requires_grad_()
        out = fn(xg)
        out.square().sum().backward()
        grads.append([out.detach(), xg.grad] + [p.grad for p in blk.parameters()])
    for ours, ref in zip(*grads):
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)


def test_rel_pos_terms_give_sams_bias():
    """The bias of query i and key (kh, kw) is rel_h[i, kh] + rel_w[i, kw]: SAM's
    add_decomposed_rel_pos, whose (N, N) sum the attention core never builds whole."""
    torch.manual_seed(0)
    q = torch.randn(2, 3, 4 * 5, 8, dtype=torch.float64)
    rel_pos = (torch.randn(7, 8, dtype=torch.float64), torch.randn(9, 8, dtype=torch.float64))
    rel_h, rel_w = core.rel_pos_terms(q, *rel_pos, (4, 5))
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(2, 3, 20, 20)
    zeros = torch.zeros(6, 20, 20, dtype=torch.float64)
    ref = add_decomposed_rel_pos(zeros, q.reshape(6, 20, 8), *rel_pos, (4, 5), (4, 5))
    torch.testing.assert_close(bias, ref.reshape(2, 3, 20, 20), atol=1e-12, rtol=0)


TINY = dict(embed_dim=64, depth=3, num_heads=4, global_attn_indexes=(1, ))


def tiny_pair(img_size=320, window=14):
    """SAMImageEncoder and segment_anything's ImageEncoderViT on the same random weights."""
    ours = randomise(SAMImageEncoder(arch=TINY, img_size=img_size, window_size=window,
                                     out_chans=32))
    ref = ImageEncoderViT(img_size=img_size, patch_size=16, embed_dim=64, depth=3, num_heads=4,
                          window_size=window, global_attn_indexes=(1, ), use_rel_pos=True,
                          out_chans=32, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    assert list(ours.state_dict()) == list(ref.state_dict())  # same keys, same order
    ref.load_state_dict(ours.state_dict())
    return ours, ref.eval()


@pytest.mark.parametrize('dtype, atol', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_tiny_encoder_equals_image_encoder_vit(dtype, atol):
    ours, ref = tiny_pair()
    ours, ref = ours.to(dtype), ref.to(dtype)
    torch.manual_seed(2)
    images = torch.randn(2, 3, 320, 320, dtype=dtype)
    with torch.no_grad():
        expected = ref(images)
    assert ours.fast_attention
    torch.testing.assert_close(ours(images), expected, atol=atol, rtol=0)
    ours.fast_attention = False  # segment_anything's own forward: bitwise
    assert torch.equal(ours(images), expected)


def test_tiny_encoder_trainable_and_bfloat16():
    ours, ref = tiny_pair(224, window=7)
    torch.manual_seed(2)
    images = torch.randn(1, 3, 224, 224)
    # not frozen: gradients as segment_anything's forward gives them
    trainable = SAMImageEncoder(arch=TINY, img_size=224, window_size=7, out_chans=32,
                                frozen=False)
    trainable.load_state_dict(ours.state_dict())
    grads = []
    for fast in (True, False):
        trainable.fast_attention = fast
        trainable.zero_grad()
        trainable(images).square().sum().backward()
        grads.append([p.grad.clone() for p in trainable.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    # bfloat16 weights and inputs, and fp32 weights under autocast
    with torch.no_grad():
        expected = ref(images)
        low = ours.to(torch.bfloat16)(images.bfloat16())
        ours.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            autocast = ours(images)
    assert low.dtype == torch.bfloat16
    for out in (low, autocast):
        assert (out.float() - expected).abs().max() < 0.1 * expected.abs().max()


@pytest.mark.parametrize('attn_mode', ['all_global', 'window_kv', 'global_blocks_only'])
def test_dit_text_free_blocks_run_the_encoders_path(attn_mode):
    """DITTextInjector without text runs each block as the encoder runs it alone: with a
    fast SAMImageEncoder through the shared core (bitwise the encoder's own output where the
    windows are kept), with ``fast_attention=False`` segment_anything's forward."""
    from mmevf.models.injectors import DITTextInjector
    ours, ref = tiny_pair()
    inj = DITTextInjector(embed_dim=64, depth=3, text_dim=64, text_attn_mode=attn_mode).eval()
    torch.manual_seed(2)
    images = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        fast = inj(ours, images, None)
        ours.fast_attention = False
        slow = inj(ours, images, None)
        ours.fast_attention = True
        if attn_mode != 'all_global':
            assert torch.equal(fast, ours(images))
        for blk in ref.blocks:  # the released attention pattern: every block global
            blk.window_size = 0 if attn_mode == 'all_global' else blk.window_size
        expected = ref(images)
    assert torch.equal(slow, expected)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=0)
