# EVF-SAM Tab. 3, row "text-only prompt" (figure not in evf_sam.md).
# The multimodal encoder reads only the expression; its text [CLS] prompts SAM.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder_image=False, projector=dict(token='text_cls'))
