# The SAM image encoder of the CPU-sized models (tiny EVF-SAM, tiny DIT): a SAM-style ViT
# 4 x 128 at 256² (16 x 16 grid, 64-d output), trained from scratch since no pretrained weights
# exist for it (or started from configs/sam/sam-tiny_synthref.py). Model bases read it as
# {{_base_.tiny_sam_image_encoder}}.
tiny_sam_image_encoder = dict(
    _delete_=True,
    type='SAMImageEncoder',
    arch=dict(embed_dim=128, depth=4, num_heads=4, global_attn_indexes=(1, 3)),
    img_size=256,
    window_size=8,
    out_chans=64,
    frozen=False)
# Its prompt encoder + mask decoder: 64-d prompts (sizes derived from the encoder),
# EVF-SAM's losses (BCE + dice) and threshold for every tiny model (like-for-like comparisons).
tiny_sam_prompt_head = dict(
    _delete_=True,  # replaces the paper models' head (and its SAM weights) whole
    type='SAMPromptHead',
    embed_dim=64,
    transformer=dict(depth=2, mlp_dim=256, num_heads=4),
    iou_head_hidden_dim=64,
    mask_threshold=0.0,
    loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
    loss_dice=dict(
        type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1e-3,
        loss_weight=1.0))
