"""DITTextInjector's paper variants keep the exactness properties where they apply
(dit.md §4, as tests/test_models/test_dit_injector.py checks them for L-DIT / E-DIT):

- Tab. 4 injections (``cross_attn``, ``cross_attn_ffn``): P1 no text -> bitwise SAM, P2 every
  text key masked -> SAM, P5 padding invariance, gradients reach the new parameters;
- Tab. 2 static prompts: P1 and P5 always; P2 only for ``static_prompt_mode='add'`` (the
  concatenated static tokens are never masked, so a fully masked text is *not* SAM then).
"""
import pytest
import torch

from mmevf.models.injectors import DITTextInjector, TextCrossAttention
from .test_dit_injector import DIM, TEXT_DIM, global_copy, inputs, make_encoder, make_injector

CROSS = [dict(injection='cross_attn'), dict(injection='cross_attn_ffn')]
STATIC = [dict(mode='layer_wise', num_static_prompts=3),
          dict(mode='end_to_end', num_static_prompts=3),
          dict(mode='layer_wise', num_static_prompts=8, static_prompt_mode='add'),
          dict(mode='end_to_end', num_static_prompts=8, static_prompt_mode='add')]
VARIANTS = CROSS + STATIC


def variant(dtype=torch.float64, init='normal', **kwargs):
    return make_injector(dtype=dtype, init=init, cross_attn_heads=4, **kwargs)


@pytest.mark.parametrize('kwargs', VARIANTS)
@pytest.mark.parametrize('attn_mode', ['all_global', 'window_kv'])
def test_p1_no_text_is_bitwise_sam(kwargs, attn_mode):
    enc = make_encoder(320, torch.float32)
    inj = variant(torch.float32, text_attn_mode=attn_mode, **kwargs)
    images, feats, _ = inputs(320, torch.float32, batch=1, pad=(0, ))
    with torch.no_grad():
        ref = (global_copy(enc) if attn_mode == 'all_global' else enc)(images)
        assert torch.equal(inj(enc, images, None, None), ref)
        assert torch.equal(inj(enc, images, feats[:, :0], None), ref)


@pytest.mark.parametrize('kwargs', CROSS + STATIC[2:])
@pytest.mark.parametrize('attn_mode, dtype, atol', [('all_global', torch.float64, 1e-12),
                                                    ('window_kv', torch.float32, 1e-6)])
def test_p2_all_text_masked_is_sam(kwargs, attn_mode, dtype, atol):
    enc = make_encoder(320, dtype)
    inj = variant(dtype, text_attn_mode=attn_mode, **kwargs)
    images, feats, _ = inputs(320, dtype, batch=1, pad=(0, ))
    mask = torch.ones(feats.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        ref = (global_copy(enc) if attn_mode == 'all_global' else enc)(images)
        out = inj(enc, images, feats, mask)
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)


@pytest.mark.parametrize('kwargs', STATIC[:2])
def test_concatenated_static_prompts_are_seen_with_all_text_masked(kwargs):
    """Static tokens are shared prompts, not text: masking the whole text leaves them."""
    enc = make_encoder(224)
    inj = variant(**kwargs)
    images, feats, _ = inputs(224, batch=1, pad=(0, ))
    mask = torch.ones(feats.shape[:2], dtype=torch.bool)
    with torch.no_grad():
        out = inj(enc, images, feats, mask)
        assert not torch.allclose(out, global_copy(enc)(images))
        inj.static_prompts.zero_()
        assert not torch.allclose(out, inj(enc, images, feats, mask))


@pytest.mark.parametrize('kwargs', VARIANTS)
@pytest.mark.parametrize('attn_mode', ['all_global', 'window_kv'])
def test_p5_padding_invariance(kwargs, attn_mode):
    enc = make_encoder(320)
    inj = variant(text_attn_mode=attn_mode, **kwargs)
    images, feats, mask = inputs(320, pad=(0, 2))
    extra = torch.randn(2, 3, TEXT_DIM, dtype=feats.dtype)
    longer = torch.cat([feats, extra], 1)
    longer_mask = torch.cat([mask, torch.ones(2, 3, dtype=torch.bool)], 1)
    with torch.no_grad():
        torch.testing.assert_close(inj(enc, images, longer, longer_mask),
                                   inj(enc, images, feats, mask), atol=1e-12, rtol=0)


@pytest.mark.parametrize('kwargs', VARIANTS)
def test_gradients_reach_the_new_parameters(kwargs):
    """Through a frozen encoder (the `*` setting), every injector parameter gets a gradient."""
    enc = make_encoder(224, torch.float32).requires_grad_(False)
    inj = variant(torch.float32, init='default', **kwargs).train()
    images, feats, mask = inputs(224, torch.float32)
    inj(enc, images, feats, mask).square().sum().backward()
    new = [(n, p) for n, p in inj.named_parameters()
           if n.startswith(('text_maps', 'static_prompts'))]
    assert new
    for name, p in new:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_cross_attention_reads_the_visual_tokens():
    """Unlike P_i, the cross-attention mapping depends on the block's visual input: two images
    with one text give different block-0 text tokens."""
    torch.manual_seed(0)
    mapping = TextCrossAttention(DIM, num_heads=4, with_ffn=True, dropout=0.0).eval()
    text = torch.randn(1, 5, DIM)
    a, b = mapping(text, torch.randn(1, 49, DIM)), mapping(text, torch.randn(1, 49, DIM))
    assert a.shape == text.shape and not torch.allclose(a, b)
    # each text token is its own query: dropping token 4 leaves tokens 0-3 unchanged
    visual = torch.randn(1, 49, DIM)
    torch.testing.assert_close(mapping(text[:, :4], visual), mapping(text, visual)[:, :4])


def test_checkpointing_matches_plain():
    enc = make_encoder(224, torch.float32)
    images, feats, mask = inputs(224, torch.float32)
    outs = []
    for with_cp in (False, True):
        inj = variant(torch.float32, injection='cross_attn_ffn', num_static_prompts=2,
                      with_cp=with_cp)
        enc.zero_grad()
        out = inj(enc, images, feats, mask)
        out.square().sum().backward()
        outs.append((out.detach(), inj.text_maps[0].attn.in_proj_weight.grad.clone(),
                     inj.static_prompts.grad.clone()))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)


def test_parameters_and_arguments():
    base = sum(p.numel() for p in DITTextInjector('layer_wise', 768, 12).parameters())
    cross = DITTextInjector('layer_wise', 768, 12, injection='cross_attn')
    assert len(cross.layer_projs) == 0 and len(cross.text_maps) == 12
    mha_ln = 4 * (768 * 768 + 768) + 2 * 768
    assert sum(p.numel() for p in cross.parameters()) == 12 * mha_ln
    ffn = DITTextInjector('layer_wise', 768, 12, injection='cross_attn_ffn')
    ffn_ln = 2 * 768 * 3072 + 3072 + 768 + 2 * 768
    assert sum(p.numel() for p in ffn.parameters()) == 12 * (mha_ln + ffn_ln)
    static = DITTextInjector('layer_wise', 768, 12, num_static_prompts=20)
    assert static.static_prompts.shape == (12, 20, 768)
    assert sum(p.numel() for p in static.parameters()) == base + 12 * 20 * 768
    assert static.static_prompts.std() > 0  # not a dead zero start
    e_static = DITTextInjector('end_to_end', 768, 12, num_static_prompts=20)
    assert e_static.static_prompts.shape == (1, 20, 768)  # enter once, carried
    e_add = DITTextInjector('end_to_end', 768, 12, num_static_prompts=20,
                            static_prompt_mode='add')
    assert e_add.static_prompts.shape == (12, 20, 768)
    with pytest.raises(ValueError, match='layer_wise'):
        DITTextInjector('end_to_end', 768, 12, injection='cross_attn')
    for kwargs in (dict(injection='mlp'), dict(static_prompt_mode='prefix')):
        with pytest.raises(ValueError):
            DITTextInjector(**kwargs)
    short = variant(num_static_prompts=4, static_prompt_mode='add')
    with pytest.raises(ValueError, match='num_static_prompts'):
        short(make_encoder(224), *inputs(224))  # 5 text tokens, 4 offsets
