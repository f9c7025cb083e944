"""init_cfg=dict(type='Pretrained', ...) loads official SAM and BEiT-3 files in scope mmevf."""
import pytest
import torch
from mmengine.registry import init_default_scope

import mmevf.models  # noqa: F401
from mmevf.registry import MODELS

TINY_SAM = dict(type='SAMImageEncoder', img_size=64, window_size=2, out_chans=8,
                arch=dict(embed_dim=16, depth=2, num_heads=2, global_attn_indexes=(1, )))
TINY_BEIT = dict(type='BEiT3MultiwayEncoder', vocab_size=20, img_size=32,
                 arch=dict(embed_dims=16, num_layers=1, num_heads=2, ffn_dims=32))


def perturbed_state(cfg: dict) -> dict:
    module = MODELS.build(cfg)
    return {k: v + torch.randn_like(v) if v.is_floating_point() else v
            for k, v in module.state_dict().items()}


@pytest.mark.parametrize('cfg, layout, prefix', [
    (TINY_SAM, lambda s: {f'image_encoder.{k}': v for k, v in s.items()}, 'image_encoder.'),
    (TINY_BEIT, lambda s: {'model': dict({f'beit3.{k}': v for k, v in s.items()},
                                         **{'mlm_head.weight': torch.zeros(3)})}, 'beit3.'),
])
def test_official_files_load_through_init_cfg(tmp_path, cfg, layout, prefix):
    init_default_scope('mmevf')
    state = perturbed_state(cfg)
    path = tmp_path / 'official.pth'
    torch.save(layout(state), path)
    module = MODELS.build(dict(cfg, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix=prefix)))
    module.init_weights()
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)

    missing = layout({k: v for k, v in state.items() if k != next(iter(state))})
    torch.save(missing, path)
    module = MODELS.build(dict(cfg, init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix=prefix)))
    with pytest.raises(ValueError, match=f'missing keys \\(1\\): {next(iter(state))}'):
        module.init_weights()
