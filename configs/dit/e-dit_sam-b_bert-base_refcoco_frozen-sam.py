# DIT paper Tab. 1 "E-DIT*" / Tab. 3 E-DIT with SAM's image encoder frozen (the released
# train_freeze.py rule, as l-dit_..._frozen-sam.py): inside the encoder only the DIT projections
# train; BERT, W_o, prompt encoder and mask decoder train.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
