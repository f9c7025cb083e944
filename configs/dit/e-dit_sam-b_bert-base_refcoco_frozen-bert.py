# DIT paper Tab. 3 E-DIT with BERT frozen (as l-dit_..._frozen-bert.py); SAM and the rest train.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
