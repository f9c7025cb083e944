"""TrainableParamsOptimWrapperConstructor: frozen parameters never reach the optimizer."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from mmevf.engine import TrainableParamsOptimWrapperConstructor
from mmevf.models.sam import SAMImageEncoder

IMG = 64


class FrozenEncoderModel(nn.Module):
    """A tiny frozen SAM image encoder and a trainable head (conv + LayerNorm)."""

    def __init__(self):
        super().__init__()
        self.image_encoder = SAMImageEncoder(
            arch=dict(embed_dim=16, depth=2, num_heads=2, global_attn_indexes=(1, )),
            img_size=IMG, window_size=2, out_chans=8)
        self.head = nn.Sequential(nn.Conv2d(8, 8, 1), nn.GroupNorm(1, 8), nn.Conv2d(8, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.image_encoder(images))


def optimized(optim_wrapper) -> list:
    return [p for group in optim_wrapper.optimizer.param_groups for p in group['params']]


def check_training_step(model: FrozenEncoderModel, optim_wrapper) -> None:
    frozen_before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    head_before = [p.clone() for p in model.head.parameters()]
    loss = model(torch.randn(2, 3, IMG, IMG)).square().mean()
    optim_wrapper.update_params(loss)
    assert all(p.grad is None for p in model.image_encoder.parameters())
    for key, value in model.image_encoder.state_dict().items():
        assert torch.equal(value, frozen_before[key]), key
    assert all(not torch.equal(p, q) for p, q in zip(model.head.parameters(), head_before))


@pytest.mark.parametrize('paramwise_cfg', [None, dict(
    custom_keys={'head.2': dict(lr_mult=0.1)}, norm_decay_mult=0.0)])
def test_only_trainable_params_are_optimized(paramwise_cfg):
    torch.manual_seed(0)
    model = FrozenEncoderModel()
    constructor = TrainableParamsOptimWrapperConstructor(
        dict(optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)), paramwise_cfg)
    optim_wrapper = constructor(model)
    trainable = list(model.head.parameters())
    assert {id(p) for p in optimized(optim_wrapper)} == {id(p) for p in trainable}
    assert len(optimized(optim_wrapper)) == len(trainable)
    groups = optim_wrapper.optimizer.param_groups
    if paramwise_cfg is None:
        assert len(groups) == 1
    else:  # paramwise_cfg still applies to the trainable parameters
        by_param = {id(g['params'][0]): g for g in groups}
        assert by_param[id(model.head[2].weight)]['lr'] == pytest.approx(1e-3)
        assert by_param[id(model.head[0].weight)]['lr'] == pytest.approx(1e-2)
        assert by_param[id(model.head[1].weight)]['weight_decay'] == 0.0
        assert by_param[id(model.head[0].weight)]['weight_decay'] == pytest.approx(0.05)
    check_training_step(model, optim_wrapper)


def test_built_from_config_under_mmevf_scope():
    init_default_scope('mmevf')
    model = FrozenEncoderModel()
    optim_wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', constructor='TrainableParamsOptimWrapperConstructor',
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9)))
    assert {id(p) for p in optimized(optim_wrapper)} == {id(p) for p in model.head.parameters()}
    check_training_step(model, optim_wrapper)


def test_no_trainable_parameter_is_an_error():
    model = FrozenEncoderModel().requires_grad_(False)
    constructor = TrainableParamsOptimWrapperConstructor(dict(optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match='no trainable parameters'):
        constructor(model)
