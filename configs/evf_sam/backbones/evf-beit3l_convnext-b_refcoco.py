# EVF-SAM (../evf-beit3l_sam-h_refcoco.py) with an ImageNet ConvNeXt-B as SAM's image encoder:
# its stride-16 stage (512 channels at 64 x 64 for 1024² input) mapped to SAM's 256-channel
# embedding by mmdet's ChannelMapper. No SAM weights exist for it, so it trains with the rest
# (SAM's prompt encoder / mask decoder still start from sam_vit_h_4b8939.pth).
# ImageNet-21k weights (download into checkpoints/):
#   https://download.openmmlab.com/mmclassification/v0/convnext/convnext-base_3rdparty_in21k_20220124-13b83eec.pth
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

convnext_checkpoint = 'checkpoints/convnext-base_3rdparty_in21k_20220124-13b83eec.pth'

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='BackboneImageEncoder',
        img_size=1024,
        frozen=False,
        backbone=dict(
            type='mmpretrain.ConvNeXt',
            # ConvNeXt-B's first three stages: the fourth (stride 32) never reaches the output
            arch=dict(depths=[3, 3, 27], channels=[128, 256, 512]),
            out_indices=(2, ),
            gap_before_final_norm=False,  # feature maps, not pooled vectors
            drop_path_rate=0.4,
            with_cp=True,  # activation checkpointing: the encoder trains at 1024²
            # mmpretrain classifier weights (backbone.*); the dropped stage is left out
            init_cfg=dict(type='Pretrained', checkpoint=convnext_checkpoint,
                          prefix='backbone.')),
        neck=dict(
            type='mmdet.ChannelMapper', in_channels=[512], out_channels=256, kernel_size=1,
            act_cfg=None, norm_cfg=dict(type='GN', num_groups=32))),
    trainable=('image_encoder', 'mm_encoder', 'projector', 'prompt_head'))
