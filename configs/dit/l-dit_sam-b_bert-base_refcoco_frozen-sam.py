# Paper setting "frozen SAM encoder": inside SAM's image encoder only the DIT projections train
# (the neck too is frozen); BERT, W_o, prompt encoder and mask decoder train.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
