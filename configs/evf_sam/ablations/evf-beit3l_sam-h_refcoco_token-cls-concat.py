# EVF-SAM Tab. 5, row "image [CLS] + text [CLS], concatenated": 83.2 RefCOCO cIoU
# (paper_tables.md).
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='cls_concat'))
