# Tab. 3, late fusion: image and text are encoded separately (no cross-modal attention in any
# layer); both [CLS] tokens are concatenated and projected.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder=dict(fusion_layers=0), projector=dict(token='cls_concat'))
