# DIT paper Tab. 3 E-DIT ✓ ✓, RefCOCO val / testA / testB oIoU 60.76 / 63.61 / 57.97
# (paper_tables.md): E-DIT with SAM's image encoder and BERT frozen: projections, W_o, prompt
# encoder and mask decoder train.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('injector', 'text_to_prompt', 'prompt_head'))
