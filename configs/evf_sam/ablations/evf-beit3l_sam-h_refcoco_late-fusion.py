# EVF-SAM Tab. 3, row "late fusion": BEiT-3-Large late (concat), 69.6 RefCOCO cIoU
# (paper_tables.md).
# Image and text are encoded separately (no cross-modal attention in any layer); both [CLS]
# tokens are concatenated and projected. The full recipe otherwise.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder=dict(fusion_layers=0), projector=dict(token='cls_concat'))
