# DIT paper, L-DIT_H on RefCOCO (full fine-tune): 76.18 val oIoU (dit.md §0.9, §7.4).
# L-DIT_H: SAM ViT-H (1280 wide, 32 blocks) + BERT-base, 800.3M parameters at 512². BERT's 768-d
# features reach the 1280-d blocks through W_0 (`pre_proj`); activation checkpointing per block.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'

model = dict(
    image_encoder=dict(arch='vit_h', init_cfg=dict(checkpoint=sam_checkpoint)),
    injector=dict(with_cp=True),
    prompt_head=dict(init_cfg=dict(checkpoint=sam_checkpoint)))
