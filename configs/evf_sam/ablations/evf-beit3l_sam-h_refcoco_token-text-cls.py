# Tab. 5: the text [CLS] token (first text token) prompts SAM.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='text_cls'))
