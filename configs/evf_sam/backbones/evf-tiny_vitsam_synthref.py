# The tiny EVF-SAM (../evf-tiny_synthref.py) with its SAM-style ViT written as mmpretrain's
# ViTSAM in a BackboneImageEncoder: the same network (4 x 128 at 256², windows of 8, global
# attention in blocks 1 and 3, 64-d output) and parameter count, trained from scratch.
_base_ = ['../evf-tiny_synthref.py']

model = dict(
    image_encoder=dict(
        _delete_=True,
        type='BackboneImageEncoder',
        img_size=256,
        embed_dims=64,
        backbone=dict(
            type='mmpretrain.ViTSAM',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512,
                      global_attn_indexes=[1, 3]),
            img_size=256,
            window_size=8,
            out_channels=64)))
