# EVF-SAM with BEiT-3-Base + SAM ViT-B.
_base_ = ['./evf-beit3b_sam-h_refcoco.py']

sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
model = dict(
    image_encoder=dict(arch='vit_b', init_cfg=dict(checkpoint=sam_checkpoint)),
    prompt_head=dict(init_cfg=dict(checkpoint=sam_checkpoint)))
