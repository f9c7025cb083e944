# EVF-SAM Tab. 5, row "text [CLS] (first text token)": 83.5 RefCOCO cIoU (paper_tables.md).
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='text_cls'))
