"""One way to load weights: init_cfg=dict(type='StrictPretrained', ...) reads official SAM and
BEiT-3 files (raw keys or through their layout); mmengine's 'Pretrained' keeps its own meaning;
the modules take no pretrained= argument beside it."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import WEIGHT_INITIALIZERS, init_default_scope
from safetensors.torch import save_file

import mmevf.models  # noqa: F401
from mmevf.registry import MODELS

TINY_SAM = dict(type='SAMImageEncoder', img_size=64, window_size=2, out_chans=8,
                arch=dict(embed_dim=16, depth=2, num_heads=2, global_attn_indexes=(1, )))
TINY_BEIT = dict(type='BEiT3MultiwayEncoder', vocab_size=20, img_size=32,
                 arch=dict(embed_dims=16, num_layers=1, num_heads=2, ffn_dims=32))
TINY_HEAD = dict(type='SAMPromptHead', embed_dim=8, image_embedding_size=4, input_image_size=64,
                 transformer=dict(depth=1, mlp_dim=16, num_heads=2), iou_head_hidden_dim=8)


def perturbed_state(cfg: dict) -> dict:
    module = MODELS.build(cfg)
    return {k: v + torch.randn_like(v) if v.is_floating_point() else v
            for k, v in module.state_dict().items()}


def assert_loaded(module, state):
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)


def sam_file(encoder, head):
    return dict({f'image_encoder.{k}': v for k, v in encoder.items()},
                **{k: v for k, v in head.items()})


@pytest.mark.parametrize('cfg, layout, file_layout, prefix', [
    (TINY_SAM, 'mmevf', lambda s: {f'image_encoder.{k}': v for k, v in s.items()},
     'image_encoder.'),
    (TINY_BEIT, 'mmevf', lambda s: {'model': dict({f'beit3.{k}': v for k, v in s.items()},
                                                  **{'mlm_head.weight': torch.zeros(3)})},
     'beit3.'),
    (TINY_BEIT, 'beit3', lambda s: {'model': dict({f'beit3.{k}': v for k, v in s.items()},
                                                  **{'mlm_head.weight': torch.zeros(3)})},
     'mm_encoder.'),
])
def test_official_files_load_through_init_cfg(tmp_path, cfg, layout, file_layout, prefix):
    init_default_scope('mmevf')
    state = perturbed_state(cfg)
    path = tmp_path / 'official.pth'
    torch.save(file_layout(state), path)
    init_cfg = dict(type='StrictPretrained', checkpoint=str(path), layout=layout, prefix=prefix)
    module = MODELS.build(dict(cfg, init_cfg=init_cfg))
    module.init_weights()
    assert_loaded(module, state)

    missing = file_layout({k: v for k, v in state.items() if k != next(iter(state))})
    torch.save(missing, path)
    module = MODELS.build(dict(cfg, init_cfg=init_cfg))
    with pytest.raises(ValueError, match=f'missing keys \\(1\\): {next(iter(state))}'):
        module.init_weights()


def test_sam_layout_fills_the_prompt_head(tmp_path):
    init_default_scope('mmevf')
    encoder, head = perturbed_state(TINY_SAM), perturbed_state(TINY_HEAD)
    path = tmp_path / 'sam_vit_tiny.pth'
    torch.save(sam_file(encoder, head), path)
    module = MODELS.build(dict(TINY_HEAD, init_cfg=dict(
        type='StrictPretrained', checkpoint=str(path), layout='sam', prefix='prompt_head.')))
    module.init_weights()
    assert_loaded(module, head)


@pytest.mark.parametrize('cfg', [TINY_SAM, TINY_BEIT, TINY_HEAD,
                                 dict(type='BertTextEncoder', config=dict(
                                     hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32), output_layer=1)],
                         ids=lambda cfg: cfg['type'])
def test_init_cfg_is_the_one_way(cfg):
    """The first release's pretrained= argument is gone: init_cfg is mmengine's one way."""
    with pytest.raises(TypeError, match='pretrained'):
        MODELS.build(dict(cfg, pretrained='weights.pth'))


def test_pretrained_is_mmengines_and_reads_safetensors(tmp_path):
    """'Pretrained' in scope mmevf is mmengine's PretrainedInit (no shadowing); through mmevf's
    local loader it reads safetensors too."""
    init_default_scope('mmevf')
    assert WEIGHT_INITIALIZERS.get('Pretrained') is PretrainedInit
    state = perturbed_state(TINY_SAM)
    path = tmp_path / 'encoder.safetensors'
    save_file({f'image_encoder.{k}': v.contiguous() for k, v in state.items()}, str(path))
    module = MODELS.build(dict(TINY_SAM, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='image_encoder.')))
    module.init_weights()
    assert_loaded(module, state)


def test_whole_model_checkpoint_is_applied_after_the_parts(tmp_path):
    """A StrictPretrained init_cfg of a segmentor is not overwritten by its parts' own
    initialisation (BEiT-3's reference init runs first, then the checkpoint)."""
    init_default_scope('mmevf')
    model_cfg = dict(
        type='EVFSAM', image_encoder=TINY_SAM, mm_encoder=TINY_BEIT,
        projector=dict(type='EVFProjector', out_channels=8), prompt_head=TINY_HEAD)
    state = perturbed_state(model_cfg)
    path = tmp_path / 'evf.pth'
    torch.save(dict(state_dict=state, meta=dict()), path)
    model = MODELS.build(dict(model_cfg, init_cfg=dict(type='StrictPretrained',
                                                       checkpoint=str(path))))
    model.init_weights()
    assert_loaded(model, state)


def test_position_tables_resized_once_at_load(tmp_path):
    """A 32² encoder takes a 64²-made file: pos_embed bicubic, global rel-pos tables linear (as
    SAM's get_rel_pos resizes them at run time); window tables keep their size."""
    init_default_scope('mmevf')
    state = perturbed_state(TINY_SAM)
    path = tmp_path / 'sam.pth'
    torch.save({f'image_encoder.{k}': v for k, v in state.items()}, path)
    small = MODELS.build(dict(TINY_SAM, img_size=32, init_cfg=dict(
        type='StrictPretrained', checkpoint=str(path), prefix='image_encoder.')))
    small.init_weights()
    pos = F.interpolate(state['pos_embed'].permute(0, 3, 1, 2), (2, 2), mode='bicubic',
                        align_corners=False).permute(0, 2, 3, 1)
    assert torch.equal(small.pos_embed, pos)
    table = state['blocks.1.attn.rel_pos_h']  # global block: 2 * 4 - 1 rows -> 2 * 2 - 1
    resized = F.interpolate(table.reshape(1, 7, -1).permute(0, 2, 1), size=3, mode='linear')
    assert torch.equal(small.blocks[1].attn.rel_pos_h, resized.reshape(-1, 3).permute(1, 0))
    assert torch.equal(small.blocks[0].attn.rel_pos_h, state['blocks.0.attn.rel_pos_h'])


def test_corrupt_checkpoint_names_the_file(tmp_path):
    init_default_scope('mmevf')
    state = perturbed_state(TINY_SAM)
    path = tmp_path / 'cut.pth'
    torch.save({f'image_encoder.{k}': v for k, v in state.items()}, path)
    path.write_bytes(path.read_bytes()[:2000])
    module = MODELS.build(dict(TINY_SAM, init_cfg=dict(
        type='StrictPretrained', checkpoint=str(path), prefix='image_encoder.')))
    with pytest.raises(ValueError, match=f'cannot read checkpoint {path}: .*truncated'):
        module.init_weights()
    (tmp_path / 'cut.safetensors').write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{}garbage')
    with pytest.raises(ValueError, match='cannot read checkpoint .*cut.safetensors'):
        MODELS.build(dict(TINY_SAM, init_cfg=dict(
            type='Pretrained', checkpoint=str(tmp_path / 'cut.safetensors')))).init_weights()
