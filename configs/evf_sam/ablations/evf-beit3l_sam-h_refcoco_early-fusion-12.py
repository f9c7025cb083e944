# Tab. 3, early fusion only in the first 12 of BEiT-3-L's 24 layers.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder=dict(fusion_layers=12))
