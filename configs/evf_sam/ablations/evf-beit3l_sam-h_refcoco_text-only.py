# EVF-SAM Tab. 3, row "text-only prompt": BEiT-3-Large text only, 65.1 RefCOCO cIoU (also
# Tab. 1 "BEiT-3 text"; paper_tables.md).
# The multimodal encoder reads only the expression; its text [CLS] prompts SAM.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(mm_encoder_image=False, projector=dict(token='text_cls'))
