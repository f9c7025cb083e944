# The SAM image encoder of the CPU-sized models (tiny EVF-SAM, tiny DIT): a SAM-style ViT
# 4 x 128 at 256² (16 x 16 grid, 64-d output), trained from scratch since no pretrained weights
# exist for it. Model bases read it as {{_base_.tiny_sam_image_encoder}}.
tiny_sam_image_encoder = dict(
    _delete_=True,
    type='SAMImageEncoder',
    arch=dict(embed_dim=128, depth=4, num_heads=4, global_attn_indexes=(1, 3)),
    img_size=256,
    window_size=8,
    out_chans=64,
    frozen=False)
