# EVF-SAM2 with BEiT-3-L + SAM-2 Hiera-T (the official sam_scale "tiny").
_base_ = ['./evf-sam2_beit3l_sam2-l_refcoco.py']
sam2_checkpoint = 'checkpoints/sam2_hiera_tiny.pt'
model = dict(sam2=dict(config='configs/sam2/sam2_hiera_t.yaml', checkpoint=sam2_checkpoint))
