# EVF-SAM Tab. 4, row "prompt encoder frozen": 83.3 RefCOCO cIoU (paper_tables.md).
# SAM's prompt encoder frozen; multimodal encoder, projector and mask decoder train.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('mm_encoder', 'projector', 'prompt_head.mask_decoder'))
