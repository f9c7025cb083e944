# Not a row of Tab. 1-5 (completes the frozen settings as L-DIT has them): E-DIT with SAM's
# image encoder and BERT frozen: projections, W_o, prompt encoder and mask decoder train.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('injector', 'text_to_prompt', 'prompt_head'))
