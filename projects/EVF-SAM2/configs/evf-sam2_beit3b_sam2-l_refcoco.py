# EVF-SAM2 with BEiT-3-Base + SAM-2 Hiera-L (the official mm_extractor_scale "base").
_base_ = ['./evf-sam2_beit3l_sam2-l_refcoco.py']
beit3_checkpoint = 'checkpoints/beit3_base_patch16_224.pth'
model = dict(mm_encoder=dict(arch='base', init_cfg=dict(checkpoint=beit3_checkpoint)))
