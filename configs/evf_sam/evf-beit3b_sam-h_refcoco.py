# EVF-SAM with BEiT-3-Base + SAM-H (863M parameters).
_base_ = ['./evf-beit3l_sam-h_refcoco.py']

beit3_checkpoint = 'checkpoints/beit3_base_patch16_224.pth'
model = dict(mm_encoder=dict(arch='base', init_cfg=dict(checkpoint=beit3_checkpoint)))
