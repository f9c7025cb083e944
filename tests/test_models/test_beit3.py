"""``BEiT3MultiwayEncoder``: parity with torchscale's BEiT-3 (the implementation EVF-SAM uses),
fusion variants, official checkpoint loading, sizes and input checks."""
import pytest
import torch
from torchscale.architecture.config import EncoderConfig
from torchscale.model.BEiT3 import BEiT3

from mmevf.models.mm_encoders import BEiT3MultiwayEncoder
from mmevf.registry import MODELS

VOCAB = 100
TINY = dict(embed_dims=64, num_layers=2, num_heads=4, ffn_dims=256)
BASE = dict(embed_dims=768, num_layers=12, num_heads=12, ffn_dims=3072)


def torchscale_beit3(arch: dict, vocab_size: int = VOCAB) -> BEiT3:
    """torchscale's BEiT-3 configured as EVF-SAM does (reference §1.1)."""
    return BEiT3(EncoderConfig(
        img_size=224, patch_size=16, vocab_size=vocab_size, multiway=True,
        layernorm_embedding=False, normalize_output=True, no_output_layer=True,
        drop_path_rate=0.0, mlp_ratio=4, encoder_embed_dim=arch['embed_dims'],
        encoder_layers=arch['num_layers'], encoder_attention_heads=arch['num_heads'],
        encoder_ffn_embed_dim=arch['ffn_dims']))


def build_pair(arch: dict, seed: int = 0):
    """(torchscale BEiT3, ours) with the same random weights, every tensor moved off its
    structured init (LayerNorm weights / biases and zero tokens included).

    The noise is small enough to keep BEiT-3-B's residual stream moderate: with larger weights
    fp32 rounding alone (torchscale against itself in fp64) approaches the 1e-5 tolerance."""
    torch.manual_seed(seed)
    reference = torchscale_beit3(arch)
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    ours = BEiT3MultiwayEncoder(arch=arch, vocab_size=VOCAB)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference.eval(), ours.eval()


def make_inputs(batch: int = 2, length: int = 9, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, 224, 224, generator=g)
    text_ids = torch.randint(0, VOCAB, (batch, length), generator=g)
    padding = torch.zeros(batch, length, dtype=torch.bool)
    padding[0, length - 3:] = True  # sample 0 padded, sample 1 full length
    return images, text_ids, padding


@pytest.fixture(scope='module')
def tiny_pair():
    return build_pair(TINY)


@pytest.fixture(scope='module')
def base_pair():
    return build_pair(BASE)


def test_state_dict_keys_equal_torchscale(tiny_pair):
    reference, ours = tiny_pair
    ref_state, our_state = reference.state_dict(), ours.state_dict()
    assert list(our_state) == list(ref_state)  # same keys, same order
    assert all(our_state[k].shape == v.shape for k, v in ref_state.items())
    reference.load_state_dict(our_state, strict=True)  # and back


# (our kwargs, torchscale kwargs) as functions of (images, text_ids, padding)
CASES = {
    'joint': lambda i, t, p: (dict(images=i, text_ids=t),
                              dict(visual_tokens=i, textual_tokens=t)),
    'joint_padded': lambda i, t, p: (dict(images=i, text_ids=t, text_padding_mask=p),
                                     dict(visual_tokens=i, textual_tokens=t,
                                          text_padding_position=p)),
    'text_only_padded': lambda i, t, p: (dict(text_ids=t, text_padding_mask=p),
                                         dict(textual_tokens=t, text_padding_position=p)),
    'image_only': lambda i, t, p: (dict(images=i), dict(visual_tokens=i)),
}


@pytest.mark.parametrize('case', list(CASES))
@pytest.mark.parametrize('arch', ['tiny', 'base'])
def test_parity_with_torchscale(arch, case, request):
    reference, ours = request.getfixturevalue(f'{arch}_pair')
    ours_kwargs, ref_kwargs = CASES[case](*make_inputs())
    with torch.no_grad():
        expected = reference(**ref_kwargs)['encoder_out']
        actual = ours(**ours_kwargs)
    assert actual.shape == expected.shape
    diff = (actual - expected).abs().max().item()
    print(f'{arch} {case}: max abs diff {diff:.2e}')
    assert diff <= 1e-5


def test_training_path_matches_and_backpropagates(tiny_pair):
    """With autograd, linear layers run through F.linear instead of oneDNN: same outputs,
    and every parameter used gets a gradient."""
    _, ours = tiny_pair
    images, text_ids, padding = make_inputs()
    with torch.no_grad():
        expected = ours(images, text_ids, padding)
    actual = ours(images, text_ids, padding)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    actual.square().mean().backward()
    unused = {'vision_embed.mask_token'}
    for name, param in ours.named_parameters():
        assert (param.grad is None) == (name in unused), name
    ours.zero_grad(set_to_none=True)


def test_int_padding_mask_of_zeros_equals_none(tiny_pair):
    # EVF-SAM's single-prompt inference passes torch.zeros_like(input_ids) (int64).
    _, ours = tiny_pair
    images, text_ids, _ = make_inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            ours(images, text_ids, torch.zeros_like(text_ids)), ours(images, text_ids),
            atol=0, rtol=0)


def clone_with(ours: BEiT3MultiwayEncoder, **kwargs) -> BEiT3MultiwayEncoder:
    other = BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB, **kwargs)
    other.load_state_dict(ours.state_dict())
    return other.eval()


def test_late_fusion_equals_separate_encodings(tiny_pair):
    _, ours = tiny_pair
    late = clone_with(ours, fusion_layers=0)
    images, text_ids, padding = make_inputs()
    with torch.no_grad():
        fused = late(images, text_ids, padding)
        separate = torch.cat([ours(images), ours(text_ids=text_ids, text_padding_mask=padding)],
                             dim=1)
        early = ours(images, text_ids, padding)
    torch.testing.assert_close(fused, separate, atol=1e-6, rtol=0)
    assert (fused - early).abs().max() > 1e-3


def test_partial_fusion(tiny_pair):
    """fusion_layers=k: the first k layers are the early-fusion layers, later ones differ;
    k = num_layers is the default."""
    _, ours = tiny_pair
    images, text_ids, padding = make_inputs()
    with torch.no_grad():
        early = ours(images, text_ids, padding)
        torch.testing.assert_close(
            clone_with(ours, fusion_layers=TINY['num_layers'])(images, text_ids, padding),
            early, atol=0, rtol=0)

        def layer_outputs(model):
            outputs = []
            hooks = [layer.register_forward_hook(lambda m, i, o: outputs.append(o))
                     for layer in model.encoder.layers]
            model(images, text_ids, padding)
            for hook in hooks:
                hook.remove()
            return outputs

        partial = layer_outputs(clone_with(ours, fusion_layers=1))
        full = layer_outputs(ours)
    for a, b in zip(partial[0], full[0]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(partial[1], full[1]))


def save_official(state: dict, path) -> None:
    """A BEiT-3 checkpoint in unilm's layout, pre-training heads included."""
    model = {f'beit3.{k}': v for k, v in state.items()}
    model.update({'mlm_head.weight': torch.randn(VOCAB, TINY['embed_dims']),
                  'mlm_head.bias': torch.zeros(VOCAB), 'logit_scale': torch.tensor(2.0)})
    torch.save({'model': model, 'args': None}, path)


def official_init(path) -> dict:
    """The init_cfg reading an official BEiT-3 file (scoped: no runner here)."""
    return dict(type='mmevf.StrictPretrained', checkpoint=str(path), layout='beit3',
                prefix='mm_encoder.')


def test_pretrained_official_checkpoint(tiny_pair, tmp_path):
    _, ours = tiny_pair
    path = tmp_path / 'beit3_tiny.pth'
    save_official(ours.state_dict(), path)
    loaded = BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB, init_cfg=official_init(path))
    loaded.init_weights()
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_pretrained_errors(tiny_pair, tmp_path):
    _, ours = tiny_pair
    state = dict(ours.state_dict())
    del state['encoder.layers.1.ffn.B.fc2.bias']
    path = tmp_path / 'incomplete.pth'
    save_official(state, path)
    with pytest.raises(ValueError, match='encoder.layers.1.ffn.B.fc2.bias'):
        BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB,
                             init_cfg=official_init(path)).init_weights()
    missing = tmp_path / 'nowhere.pth'
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB,
                             init_cfg=official_init(missing)).init_weights()


def test_reference_init():
    model = BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB)
    model.init_weights()
    layer = model.encoder.layers[0]
    for linear in (layer.self_attn.q_proj.A, layer.ffn.B.fc2):
        assert linear.weight.abs().max() <= 0.02 and linear.weight.std() > 0.01
        assert not linear.bias.any()
    for norm in (layer.self_attn.inner_attn_ln.B, layer.ffn.A.ffn_layernorm,
                 model.encoder.layer_norm.A):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert not norm.bias.any()
    text_std = model.text_embed.weight.std().item()
    assert abs(text_std - TINY['embed_dims']**-0.5) < 0.02
    assert abs(model.encoder.embed_positions.B.weight.std().item() - 1) < 0.05
    assert not model.vision_embed.cls_token.any() and not model.vision_embed.mask_token.any()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights()  # a second call (e.g. from a parent model) changes nothing
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize('arch,expected', [('base', 220_987_392), ('large', 672_702_464)])
def test_parameter_count(arch, expected):
    with torch.device('meta'):
        model = MODELS.build(dict(type='BEiT3MultiwayEncoder', arch=arch))
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.num_vision_tokens == 197
    assert model.embed_dims == {'base': 768, 'large': 1024}[arch]


def test_with_cp_and_drop_path_train():
    torch.manual_seed(0)
    plain = BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB).train()
    ckpt = clone_with(plain, with_cp=True).train()
    images, text_ids, padding = make_inputs(length=5)
    for model in (plain, ckpt):
        model(images, text_ids, padding).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5, msg=name)
    dropping = clone_with(plain, drop_path_rate=0.5).train()
    with torch.no_grad():
        assert not torch.equal(dropping(images, text_ids, padding),
                               dropping.eval()(images, text_ids, padding))


def test_input_errors():
    model = BEiT3MultiwayEncoder(arch=TINY, vocab_size=VOCAB, max_text_positions=8)
    images, text_ids, padding = make_inputs(length=6)
    with pytest.raises(ValueError, match='needs images, text_ids or both'):
        model()
    with pytest.raises(ValueError, match='longer than the 6'):
        model(text_ids=torch.zeros(2, 7, dtype=torch.long))
    model(text_ids=text_ids)  # 6 tokens fit
    with pytest.raises(ValueError, match='does not match text_ids'):
        model(images, text_ids, padding[:, :5])
    with pytest.raises(ValueError, match='without text_ids'):
        model(images, text_padding_mask=padding)
    with pytest.raises(ValueError, match='batch sizes differ'):
        model(images[:1], text_ids)
    with pytest.raises(ValueError, match=r'images must be \(B, C, 224, 224\)'):
        model(images[..., :112, :112])
    with pytest.raises(ValueError, match='fusion_layers'):
        BEiT3MultiwayEncoder(arch=TINY, fusion_layers=3)
    with pytest.raises(ValueError, match='arch'):
        BEiT3MultiwayEncoder(arch='huge')
