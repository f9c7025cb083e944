# Tab. 4: all of SAM frozen (prompt encoder and mask decoder too); only the multimodal encoder
# and the projector train.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('mm_encoder', 'projector'))
