# EVF-SAM Tab. 4, row "prompt encoder and mask decoder frozen": 82.9 RefCOCO cIoU
# (paper_tables.md).
# All of SAM frozen; only the multimodal encoder and the projector train.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('mm_encoder', 'projector'))
