# DIT paper Tab. 1 "Add 2 decoder layers*": default-add2 with SAM's image encoder frozen.
_base_ = ['./default-add2_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'text_to_prompt', 'prompt_head'))
