"""DITTextInjector: the exactness properties of the DIT design notes (dit.md §4).

P1/P3 no text -> bitwise SAM; P2 every text key masked -> SAM; P4 equal to a naive
concatenated-sequence re-implementation of the released algorithm; P5 padding invariance;
P6 zero-initialised projections are NOT the identity; P8 pos_embed resizing."""
import copy
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import (ImageEncoderViT, add_decomposed_rel_pos,
                                                     window_partition, window_unpartition)

from mmevf.models.injectors import DITTextInjector

DIM, DEPTH, HEADS, TEXT_DIM = 64, 4, 4, 48


def make_encoder(img_size: int, dtype=torch.float64) -> ImageEncoderViT:
    """dit.md §4 fixture: 320 -> 20x20 grid padded to 28 by the 14-windows; 224 -> 14x14."""
    torch.manual_seed(0)
    enc = ImageEncoderViT(img_size=img_size, patch_size=16, embed_dim=DIM, depth=DEPTH,
                          num_heads=HEADS, window_size=14, global_attn_indexes=(1, 3),
                          use_rel_pos=True, out_chans=32, qkv_bias=True,
                          norm_layer=partial(nn.LayerNorm, eps=1e-6))
    with torch.no_grad():
        for p in enc.parameters():  # rel-pos tables too (zero in the architecture)
            p.normal_(0, 0.05)
    return enc.to(dtype).eval()


def make_injector(mode='layer_wise', dtype=torch.float64, init='normal', **kwargs):
    kwargs.setdefault('text_dim', TEXT_DIM)
    inj = DITTextInjector(mode=mode, embed_dim=DIM, depth=DEPTH, proj_dropout=0.0, **kwargs)
    if init == 'normal':
        torch.manual_seed(1)
        with torch.no_grad():
            for p in inj.parameters():
                p.normal_(0, 0.05)
    return inj.to(dtype).eval()


def inputs(img_size, dtype=torch.float64, batch=2, length=5, pad=(0, 2)):
    """Images (B, 3, S, S), text features (B, l, TEXT_DIM), padding mask (B, l)."""
    torch.manual_seed(2)
    images = torch.randn(batch, 3, img_size, img_size, dtype=dtype)
    feats = torch.randn(batch, length, TEXT_DIM, dtype=dtype)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for b, n in enumerate(pad):  # n padded tokens at the end of text b
        if n:
            mask[b, -n:] = True
    return images, feats, mask


def global_copy(enc):
    """SAM with every block global (P3 reference: the released code's attention pattern)."""
    enc = copy.deepcopy(enc)
    for blk in enc.blocks:
        blk.window_size = 0
    return enc


def naive_dit(enc, inj, images, feats, mask, windows: bool):
    """Straightforward re-implementation of the released algorithm: the projected text is
    concatenated to the visual tokens, the whole sequence goes through LN / qkv / softmax / MLP,
    rel-pos is added to the visual-visual block only, text keys at padding get -inf when
    masking; L-DIT overwrites the text rows before every block. ``windows``: window blocks
    attend inside [text; window], text queries (E-DIT) globally over [visual grid; text]."""
    x = enc.patch_embed(images)
    pos = enc.pos_embed
    if pos.shape[1:3] != x.shape[1:3]:
        pos = F.interpolate(pos.permute(0, 3, 1, 2), x.shape[1:3], mode='bicubic',
                            align_corners=False).permute(0, 2, 3, 1)
    x = x + pos
    b, h, w, d = x.shape
    l = feats.shape[1]
    neg = torch.zeros(b, l, dtype=x.dtype)
    if mask is not None and inj.mask_text_padding:
        neg = neg.masked_fill(mask, float('-inf'))
    feats = inj.pre_proj(feats) if inj.pre_proj is not None else feats
    text = feats
    for i, blk in enumerate(enc.blocks):
        if inj.mode == 'layer_wise':
            text = inj.layer_projs[i](feats)
        elif i > 0:
            text = inj.layer_projs[i - 1](text)
        a = blk.attn
        nh = a.num_heads

        def attend(seq, gh, gw, bias_neg):  # seq: (n, l + gh*gw, d) -> attention output
            n, s, _ = seq.shape
            qkv = a.qkv(blk.norm1(seq)).reshape(n, s, 3, nh, -1).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            logits = (q * a.scale) @ k.transpose(-2, -1)  # (n, nh, s, s)
            vv = logits[:, :, l:, l:].reshape(n * nh, gh * gw, gh * gw)
            vv = add_decomposed_rel_pos(vv, q[:, :, l:].reshape(n * nh, gh * gw, -1),
                                        a.rel_pos_h, a.rel_pos_w, (gh, gw), (gh, gw))
            logits = torch.cat([logits[:, :, :, :l],
                                torch.cat([logits[:, :, :l, l:],
                                           vv.reshape(n, nh, gh * gw, gh * gw)], 2)], 3)
            logits = logits + F.pad(bias_neg, (0, gh * gw))[:, None, None, :]
            out = (logits.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(n, s, d)
            return a.proj(out)

        if windows and blk.window_size > 0:
            # visual: per window [text; window]; SAM pads the normalised grid with zeros, so
            # the window sequence is built from LN1(x) and re-normalising is skipped for it.
            ws = blk.window_size
            xn, pad_hw = window_partition(blk.norm1(x), ws)
            nw = xn.shape[0] // b
            tn = blk.norm1(text).repeat_interleave(nw, 0)
            n = xn.shape[0]
            qkv_v = a.qkv(xn.reshape(n, ws * ws, d))
            qkv_t = a.qkv(tn)
            qkv = torch.cat([qkv_t, qkv_v], 1).reshape(n, l + ws * ws, 3, nh, -1)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            logits = (q * a.scale) @ k.transpose(-2, -1)
            vv = add_decomposed_rel_pos(logits[:, :, l:, l:].reshape(n * nh, ws * ws, ws * ws),
                                        q[:, :, l:].reshape(n * nh, ws * ws, -1),
                                        a.rel_pos_h, a.rel_pos_w, (ws, ws), (ws, ws))
            logits = torch.cat([logits[:, :, l:, :l], vv.reshape(n, nh, ws * ws, ws * ws)], 3)
            logits = logits + F.pad(neg.repeat_interleave(nw, 0), (0, ws * ws))[:, None, None]
            # keys in the order [text; window], as v
            out = (logits.softmax(-1) @ v).permute(0, 2, 1, 3)
            out = a.proj(out.reshape(n, ws, ws, d))
            x_new = x + window_unpartition(out, ws, pad_hw, (h, w))
            if inj.mode == 'end_to_end':  # text queries: global over [text; grid]
                seq = torch.cat([text, x.reshape(b, h * w, d)], 1)
                qkv = a.qkv(blk.norm1(seq)).reshape(b, l + h * w, 3, nh, -1)
                q, k, v = qkv.permute(2, 0, 3, 1, 4)
                lg = (q[:, :, :l] * a.scale) @ k.transpose(-2, -1) + F.pad(
                    neg, (0, h * w))[:, None, None]
                t_out = (lg.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, l, d)
                text = text + a.proj(t_out)
                text = text + blk.mlp(blk.norm2(text))
            x = x_new + blk.mlp(blk.norm2(x_new))
            continue
        seq = torch.cat([text, x.reshape(b, h * w, d)], 1)
        seq = seq + attend(seq, h, w, neg)
        seq = seq + blk.mlp(blk.norm2(seq))
        text, x = seq[:, :l], seq[:, l:].reshape(b, h, w, d)
    return enc.neck(x.permute(0, 3, 1, 2))


def test_segment_anything_api_used():
    """The injector reads these members of SAM's blocks (segment-anything==1.0)."""
    enc = make_encoder(224)
    for blk in enc.blocks:
        for name in ('norm1', 'norm2', 'mlp', 'window_size', 'attn'):
            assert hasattr(blk, name)
        for name in ('qkv', 'proj', 'num_heads', 'scale', 'use_rel_pos', 'rel_pos_h',
                     'rel_pos_w'):
            assert hasattr(blk.attn, name)
    assert all(hasattr(enc, n) for n in ('patch_embed', 'pos_embed', 'blocks', 'neck'))


# P1-P3 on one image (batch 1); both fixtures and dtypes for the bitwise properties.
@pytest.mark.parametrize('img_size, dtype', [(320, torch.float64), (320, torch.float32),
                                             (224, torch.float64)])
def test_p1_no_text_is_bitwise_sam(img_size, dtype):
    enc = make_encoder(img_size, dtype)
    images, feats, _ = inputs(img_size, dtype, batch=1, pad=(0, ))
    with torch.no_grad():
        ref = enc(images)
        for mode, attn_mode in (('layer_wise', 'window_kv'), ('end_to_end', 'global_blocks_only')):
            inj = make_injector(mode, dtype, text_attn_mode=attn_mode)
            assert torch.equal(inj(enc, images, None, None), ref)
            assert torch.equal(inj(enc, images, feats[:, :0], None), ref)


@pytest.mark.parametrize('img_size, dtype', [(320, torch.float64), (320, torch.float32),
                                             (224, torch.float64)])
def test_p3_all_global_without_text_is_bitwise_global_sam(img_size, dtype):
    enc = make_encoder(img_size, dtype)
    inj = make_injector('end_to_end', dtype, text_attn_mode='all_global')
    images, feats, _ = inputs(img_size, dtype, batch=1, pad=(0, ))
    with torch.no_grad():
        ref = global_copy(enc)(images)
        assert torch.equal(inj(enc, images, None, None), ref)
        assert torch.equal(inj(enc, images, feats[:, :0], None), ref)
        if img_size == 320:  # at 224 the 14x14 grid is one window: global = windowed
            assert not torch.allclose(ref, enc(images))


@pytest.mark.parametrize('mode, attn_mode, dtype, atol', [
    ('layer_wise', 'all_global', torch.float64, 1e-12),
    ('end_to_end', 'window_kv', torch.float64, 1e-12),
    ('layer_wise', 'window_kv', torch.float32, 1e-6),
    ('end_to_end', 'all_global', torch.float32, 1e-6),
    ('end_to_end', 'global_blocks_only', torch.float32, 1e-6),
])
def test_p2_all_text_masked_is_sam(mode, attn_mode, dtype, atol):
    enc = make_encoder(320, dtype)
    inj = make_injector(mode, dtype, text_attn_mode=attn_mode)
    images, feats, _ = inputs(320, dtype, batch=1, pad=(0, ))
    mask = torch.ones(feats.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        ref = (global_copy(enc) if attn_mode == 'all_global' else enc)(images)
        out = inj(enc, images, feats, mask)
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)


@pytest.mark.parametrize('mode, attn_mode, mask_padding, img_size', [
    ('layer_wise', 'all_global', True, 320),
    ('layer_wise', 'all_global', False, 320),  # released: padding attended
    ('end_to_end', 'all_global', True, 320),
    ('end_to_end', 'all_global', False, 224),
    ('layer_wise', 'window_kv', True, 320),
    ('end_to_end', 'window_kv', True, 320),
])
def test_p4_equals_naive_concatenation(mode, attn_mode, mask_padding, img_size):
    enc = make_encoder(img_size)
    inj = make_injector(mode, mask_text_padding=mask_padding, text_attn_mode=attn_mode)
    images, feats, mask = inputs(img_size)
    with torch.no_grad():
        out = inj(enc, images, feats, mask)
        ref = naive_dit(enc if attn_mode == 'window_kv' else global_copy(enc), inj, images,
                        feats, mask, windows=attn_mode == 'window_kv')
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)


def test_p4_float32_within_1e6():
    enc = make_encoder(320, torch.float32)
    inj = make_injector('layer_wise', torch.float32)
    images, feats, mask = inputs(320, torch.float32)
    with torch.no_grad():
        out = inj(enc, images, feats, mask)
        ref = naive_dit(global_copy(enc), inj, images, feats, mask, windows=False)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize('mode, attn_mode', [
    ('layer_wise', 'all_global'), ('end_to_end', 'all_global'),
    ('end_to_end', 'window_kv'), ('layer_wise', 'global_blocks_only')])
def test_p5_padding_invariance(mode, attn_mode):
    enc = make_encoder(320)
    inj = make_injector(mode, text_attn_mode=attn_mode)
    images, feats, mask = inputs(320, pad=(0, 0))
    extra = torch.randn(2, 3, TEXT_DIM, dtype=feats.dtype)
    longer = torch.cat([feats, extra], 1)
    longer_mask = torch.cat([mask, torch.ones(2, 3, dtype=torch.bool)], 1)
    with torch.no_grad():
        torch.testing.assert_close(inj(enc, images, longer, longer_mask),
                                   inj(enc, images, feats, mask), atol=1e-12, rtol=0)


@pytest.mark.parametrize('attn_mode', ['all_global', 'window_kv'])
def test_p6_zero_init_is_not_identity(attn_mode):
    """Zero projections give text tokens 0, LN1(0) = LN bias, still attended to: the output at
    initialisation is NOT SAM's (dit.md finding 5)."""
    enc = make_encoder(320)
    inj = make_injector('layer_wise', init='default', proj_init='zeros', text_dim=DIM,
                        text_attn_mode=attn_mode)
    assert all(not p.any() for p in inj.parameters())
    images, feats, _ = inputs(320)
    feats = torch.randn(2, 5, DIM, dtype=feats.dtype)
    with torch.no_grad():
        ref = (global_copy(enc) if attn_mode == 'all_global' else enc)(images)
        out = inj(enc, images, feats, None)
    assert (out - ref).abs().max() > 1e-6
    assert not torch.allclose(out, ref)


def test_zero_init_projections_receive_gradients():
    """Through a frozen encoder, zero-initialised projections get non-zero gradients."""
    enc = make_encoder(224, torch.float32).requires_grad_(False)
    for mode in ('layer_wise', 'end_to_end'):
        inj = make_injector(mode, torch.float32, init='default').train()
        images, feats, mask = inputs(224, torch.float32)
        inj(enc, images, feats, mask).square().sum().backward()
        for name, p in inj.named_parameters():
            assert p.grad is not None, (mode, name)
            if name.endswith('weight') and not (mode == 'layer_wise' and 'pre_proj' in name):
                assert p.grad.abs().sum() > 0, (mode, name)
        if mode == 'layer_wise':  # behind zero P_i, W_0 only learns after the first step
            assert not inj.pre_proj.weight.grad.any()


def test_p8_grid_must_match_the_encoder():
    """pos_embed is not resized on every forward: an encoder built at 320 refuses 160² images
    and says how to build it (official tables are resized once at load, see
    tests/test_models/test_pretrained_init.py and test_dit_sam.py)."""
    enc = make_encoder(320)
    images, feats, mask = inputs(160)
    with pytest.raises(ValueError, match='build it at img_size=160'):
        make_injector()(enc, images, feats, mask)


def test_checkpointing_matches_plain():
    enc = make_encoder(224, torch.float32)
    images, feats, mask = inputs(224, torch.float32)
    grads = []
    for with_cp in (False, True):
        inj = make_injector('end_to_end', torch.float32, with_cp=with_cp)
        enc.zero_grad()
        out = inj(enc, images, feats, mask)
        out.square().sum().backward()
        grads.append((out.detach(), enc.blocks[0].attn.qkv.weight.grad.clone(),
                      inj.layer_projs[0].weight.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_parameters_and_arguments():
    inj = DITTextInjector('layer_wise', embed_dim=768, depth=12, text_dim=768)
    assert inj.pre_proj is None and len(inj.layer_projs) == 12  # official ViT-B: 12 x 768²
    assert sum(p.numel() for p in inj.parameters()) == 12 * (768 * 768 + 768)
    h = DITTextInjector('layer_wise', embed_dim=1280, depth=32, text_dim=768)
    assert h.pre_proj.weight.shape == (1280, 768) and len(h.layer_projs) == 32
    e = DITTextInjector('end_to_end', embed_dim=768, depth=12)
    assert e.pre_proj is not None and len(e.layer_projs) == 11
    assert len(DITTextInjector('end_to_end', 768, 12, e2e_layer_proj=False).layer_projs) == 0
    for kwargs in (dict(mode='x'), dict(text_attn_mode='window'), dict(proj_init='ones')):
        with pytest.raises(ValueError):
            DITTextInjector(**kwargs)
    with pytest.raises(ValueError, match='blocks'):
        DITTextInjector(embed_dim=DIM, depth=3)(make_encoder(224), *inputs(224))
