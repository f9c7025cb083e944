# DIT paper Tab. 1 "Add 4 decoder layers*": default-add4 with SAM's image encoder frozen.
_base_ = ['./default-add4_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'text_to_prompt', 'prompt_head'))
