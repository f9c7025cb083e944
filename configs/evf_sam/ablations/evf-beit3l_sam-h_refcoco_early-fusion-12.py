# EVF-SAM Tab. 3, row "early fusion in the first 12 of 24 layers": 82.2 RefCOCO cIoU
# (paper_tables.md).
# BEiT-3-L fuses image and text in its first 12 layers only; the full recipe otherwise.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder=dict(fusion_layers=12))
