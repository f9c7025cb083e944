# DIT paper Tab. 5, L-DIT_H on RefCOCO+: l-dit_sam-h_bert-base_refcoco.py's model on
# RefCOCO+ (SAM ViT-H, W_0 = pre_proj, activation checkpointing per block).
_base_ = ['./l-dit_sam-b_bert-base_refcoco+.py']
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'

model = dict(
    image_encoder=dict(arch='vit_h', init_cfg=dict(checkpoint=sam_checkpoint)),
    injector=dict(with_cp=True),
    prompt_head=dict(init_cfg=dict(checkpoint=sam_checkpoint)))
