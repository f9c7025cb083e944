# DIT setting "frozen SAM encoder and frozen BERT" (dit.md §5.3): 11.35M of L-DIT_B's
# 208.1M train. Paper (paper_tables.md): Tab. 3 L-DIT ✓ ✓, RefCOCO val / testA / testB oIoU
# 67.16 / 68.24 / 62.70.
# Frozen SAM encoder and frozen BERT: projections, W_o, prompt encoder and mask decoder train.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('injector', 'text_to_prompt', 'prompt_head'))
