# EVF-Effi-SAM-B (EVF-SAM paper, Tab. 7): BEiT-3-Base + EfficientSAM-Ti, 232M parameters
# (231,998,052 in the official code).
_base_ = ['./_base_effi_refcoco.py']

effisam_checkpoint = 'checkpoints/efficient_sam_vitt.pt'
beit3_checkpoint = 'checkpoints/beit3_base_patch16_224.pth'
model = dict(
    image_encoder=dict(arch='vit_t', init_cfg=dict(checkpoint=effisam_checkpoint)),
    mm_encoder=dict(arch='base', init_cfg=dict(checkpoint=beit3_checkpoint)),
    prompt_head=dict(init_cfg=dict(checkpoint=effisam_checkpoint)))
