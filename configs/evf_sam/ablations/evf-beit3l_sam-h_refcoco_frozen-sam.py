# EVF-SAM Tab. 4, row "prompt encoder and mask decoder frozen" (figure not in evf_sam.md).
# All of SAM frozen; only the multimodal encoder and the projector train.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('mm_encoder', 'projector'))
