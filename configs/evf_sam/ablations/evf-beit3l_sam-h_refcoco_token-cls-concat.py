# Tab. 5: image and text [CLS] tokens, concatenated, prompt SAM.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='cls_concat'))
