# The text-only baseline of evf-tiny_synthref.py (paper Tab. 3): the multimodal encoder reads
# only the expression, its text [CLS] token prompts SAM; same model size, data and budget.
_base_ = ['./evf-tiny_synthref.py']

model = dict(mm_encoder_image=False, projector=dict(token='text_cls'))
