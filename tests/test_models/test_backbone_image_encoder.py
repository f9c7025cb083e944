"""BackboneImageEncoder: mmpretrain's ViTSAM loaded from an official-layout SAM file through
mmevf's loading path equals segment_anything's encoder; other backbones (ConvNeXt, Swin) with
mmdet's ChannelMapper meet SAM's embedding contract; a backbone that breaks it, SAM weights for
another backbone, and DIT with anything but SAM's own ViT are refused with clear errors."""
from functools import partial

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from segment_anything.modeling import ImageEncoderViT

import mmevf.models  # noqa: F401
from mmevf.checkpoint import load_state_dict_checked, mmevf_to_sam
from mmevf.registry import MODELS

# A small SAM ViT: 16 x 16 grid, windows of 7 (padded to 21), global attention in blocks 1, 3.
SAM_VIT = dict(embed_dim=96, depth=4, num_heads=3, window_size=7, global_attn_indexes=(1, 3))
VITSAM = dict(
    type='mmpretrain.ViTSAM',
    arch=dict(embed_dims=96, num_layers=4, num_heads=3, feedforward_channels=384,
              global_attn_indexes=[1, 3]),
    img_size=256, window_size=7, out_channels=256)


def sam_encoder(img_size: int = 256) -> ImageEncoderViT:
    """segment_anything's encoder as build_sam.py makes it, with random weights (the position
    tables start at zero, the LayerNorms at one: all perturbed)."""
    torch.manual_seed(0)
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=16, mlp_ratio=4.0, out_chans=256, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, **SAM_VIT)
    with torch.no_grad():
        for param in encoder.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return encoder.eval()


def write_sam_file(path, encoder: nn.Module) -> str:
    """A full SAM checkpoint's layout: image_encoder.*, prompt_encoder.*, mask_decoder.*."""
    state = {f'image_encoder.{k}': v for k, v in encoder.state_dict().items()}
    state.update({'prompt_encoder.no_mask_embed.weight': torch.zeros(1, 256),
                  'mask_decoder.iou_token.weight': torch.zeros(1, 256)})
    torch.save(state, path)
    return str(path)


def build(**cfg) -> nn.Module:
    init_default_scope('mmevf')
    return MODELS.build(dict(type='BackboneImageEncoder', **cfg))


def test_vitsam_loaded_from_sam_file_equals_sam(tmp_path):
    sam = sam_encoder()
    path = write_sam_file(tmp_path / 'sam.pth', sam)
    encoder = build(backbone=VITSAM, img_size=256, init_cfg=dict(
        type='StrictPretrained', checkpoint=path, layout='sam', prefix='image_encoder.'))
    encoder.init_weights()  # ViTSAM's own init first, then the file, strictly
    images = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        expected, out = sam(images), encoder.eval()(images)
    assert out.shape == expected.shape == (2, 256, 16, 16)
    assert (out - expected).abs().max() <= 1e-5

    # the same renaming on plain torch loading (a pre-hook): strict, every key used
    plain = build(backbone=VITSAM, img_size=256)
    plain.load_state_dict(sam.state_dict())
    for key, value in encoder.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key

    # inside a segmentor's checkpoint (image_encoder.backbone.*), back to SAM's layout
    trained = {f'image_encoder.{k}': v for k, v in encoder.state_dict().items()}
    trained.update({'prompt_head.prompt_encoder.x': torch.zeros(1),
                    'prompt_head.mask_decoder.y': torch.zeros(1)})
    torch.save({'state_dict': trained}, tmp_path / 'mmevf.pth')
    back = mmevf_to_sam(str(tmp_path / 'mmevf.pth'))
    image_part = {k[len('image_encoder.'):]: v for k, v in back.items()
                  if k.startswith('image_encoder.')}
    assert image_part.keys() == sam.state_dict().keys()
    assert all(torch.equal(v, sam.state_dict()[k]) for k, v in image_part.items())


def test_sam_file_for_another_grid_resized_as_sam_image_encoder_does(tmp_path):
    """SAM's 256² tables into a 128² ViTSAM: pos_embed bicubic, rel-pos of the global blocks
    linear, as mmevf's SAMImageEncoder loads the same file (and before mmevf's shape check)."""
    path = write_sam_file(tmp_path / 'sam.pth', sam_encoder(256))
    init_cfg = dict(type='StrictPretrained', checkpoint=path, layout='sam',
                    prefix='image_encoder.')
    encoder = build(backbone=dict(VITSAM, img_size=128), img_size=128, init_cfg=init_cfg)
    encoder.init_weights()
    reference = MODELS.build(dict(
        type='SAMImageEncoder', img_size=128, window_size=7, init_cfg=init_cfg,
        arch=dict(embed_dim=96, depth=4, num_heads=3, global_attn_indexes=(1, 3))))
    reference.init_weights()
    images = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        assert (encoder.eval()(images) - reference(images)).abs().max() <= 1e-5


@pytest.mark.parametrize('backbone, channels', [
    (dict(type='mmpretrain.ConvNeXt', arch=dict(depths=[1, 1, 1], channels=[16, 32, 64]),
          out_indices=(2, ), gap_before_final_norm=False), 64),
    (dict(type='mmpretrain.SwinTransformer',
          arch=dict(embed_dims=16, depths=[1, 1, 1], num_heads=[1, 2, 4]), img_size=64,
          window_size=4, out_indices=(2, )), 64),
])
def test_other_backbones_with_channel_mapper_meet_the_contract(backbone, channels):
    encoder = build(backbone=backbone, img_size=64, neck=dict(
        type='mmdet.ChannelMapper', in_channels=[channels], out_channels=256, kernel_size=1,
        act_cfg=None, norm_cfg=dict(type='GN', num_groups=32)))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.init_weights()  # no checkpoint: the backbone's and the neck's own initialisation
    assert any(not torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    out = encoder(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 256, 4, 4) and torch.isfinite(out).all()
    out.sum().backward()  # trains end to end
    assert all(p.grad is not None for p in encoder.neck.parameters())
    assert encoder.patch_size == 16 and encoder.img_size == 64


def test_backbone_breaking_the_contract_is_named():
    stride32 = dict(type='mmpretrain.ConvNeXt', arch=dict(depths=[1, 1, 1, 1],
                    channels=[8, 16, 32, 64]), out_indices=(3, ), gap_before_final_norm=False)
    with pytest.raises(ValueError, match=r"mmpretrain\.ConvNeXt gave the outputs "
                                         r"\[\(1, 64, 2, 2\)\].*\(1, 256, 4, 4\)"):
        build(backbone=stride32, img_size=64)(torch.zeros(1, 3, 64, 64))
    pooled = dict(stride32, out_indices=(2, ), gap_before_final_norm=True)  # (B, C) vectors
    with pytest.raises(ValueError, match=r'gave the outputs \[\(1, 32\)\]'):
        build(backbone=pooled, img_size=64)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match='expected \\(B, 3, 64, 64\\) images'):
        build(backbone=stride32, img_size=64)(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match='built for img_size'):
        build(backbone=VITSAM, img_size=512)  # ViTSAM's tables are for 256


def test_sam_weights_for_another_backbone_are_refused(tmp_path):
    path = write_sam_file(tmp_path / 'sam.pth', sam_encoder())
    convnext = build(backbone=dict(type='mmpretrain.ConvNeXt', arch=dict(
        depths=[1, 1, 1], channels=[8, 16, 256]), out_indices=(2, ),
        gap_before_final_norm=False), img_size=256)
    state = {k[len('image_encoder.'):]: v for k, v in torch.load(path).items()
             if k.startswith('image_encoder.')}
    with pytest.raises(ValueError, match='load into mmpretrain.ViTSAM only, not into '
                                         'mmpretrain.ConvNeXt'):
        load_state_dict_checked(convnext, state, path)
    trained = {f'image_encoder.{k}': v for k, v in convnext.state_dict().items()}
    trained.update({'prompt_head.prompt_encoder.x': torch.zeros(1),
                    'prompt_head.mask_decoder.y': torch.zeros(1)})
    torch.save(trained, tmp_path / 'convnext.pth')
    with pytest.raises(ValueError, match='not those of a ViTSAM'):
        mmevf_to_sam(str(tmp_path / 'convnext.pth'))


def test_frozen_encoder_stays_frozen():
    encoder = build(backbone=VITSAM, img_size=256, frozen=True)
    encoder.train()
    assert not encoder.training and not encoder.backbone.training
    assert not any(p.requires_grad for p in encoder.parameters())
    images = torch.randn(1, 3, 256, 256, requires_grad=True)
    assert not encoder(images).requires_grad  # run under no_grad


def test_dit_refuses_another_image_encoder(repo_root):
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(repo_root / 'configs/dit/l-dit-tiny_synthref.py'))
    cfg.model.image_encoder = dict(type='BackboneImageEncoder', img_size=256, embed_dims=64,
                                   backbone=dict(VITSAM, out_channels=64))
    with pytest.raises(TypeError, match='DITSAM needs SAMImageEncoder .* got '
                                        'BackboneImageEncoder'):
        MODELS.build(cfg.model)
