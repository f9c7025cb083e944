# EVF-SAM (../evf-beit3l_sam-h_refcoco.py) with SAM-H's image encoder written as mmpretrain's
# ViTSAM inside a BackboneImageEncoder: the same network (ViT-H/16, windows of 14, global
# attention in blocks 7, 15, 23, 31, a 256-channel neck), the same official weights
# (sam_vit_h_4b8939.pth, keys renamed at load time), the same 1.32B parameters, still frozen.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='BackboneImageEncoder',
        img_size=1024,
        frozen=True,
        backbone=dict(
            type='mmpretrain.ViTSAM', arch='huge', img_size=1024, window_size=14,
            out_channels=256),
        init_cfg=dict(type='StrictPretrained', checkpoint={{_base_.sam_checkpoint}},
                      layout='sam', prefix='image_encoder.')))
