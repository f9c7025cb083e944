# DIT paper Tab. 1 "Default*": the Default baseline with SAM's image encoder frozen (the `*`
# setting); BERT, W_o, prompt encoder and mask decoder train.
_base_ = ['./default_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'text_to_prompt', 'prompt_head'))
