# The tiny EVF-SAM (../evf-tiny_synthref.py) with a small ConvNeXt (three stages, 32 / 64 / 128
# channels) as SAM's image encoder: its stride-16 stage mapped to the 64-d prompt width by
# mmdet's ChannelMapper, trained from scratch.
_base_ = ['../evf-tiny_synthref.py']

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='BackboneImageEncoder',
        img_size=256,
        embed_dims=64,
        backbone=dict(
            type='mmpretrain.ConvNeXt',
            arch=dict(depths=[1, 1, 2], channels=[32, 64, 128]),
            out_indices=(2, ),
            gap_before_final_norm=False),
        neck=dict(
            type='mmdet.ChannelMapper', in_channels=[128], out_channels=64, kernel_size=1,
            act_cfg=None, norm_cfg=dict(type='GN', num_groups=32))))
