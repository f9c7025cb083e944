# DIT setting "frozen SAM encoder, trainable BERT" (released train_freeze.py; dit.md §5.3):
# 120.8M of L-DIT_B's 208.1M train. Paper (paper_tables.md): Tab. 1 "Layer-wise DIT*" / Tab. 3
# L-DIT ✓ ×, RefCOCO val / testA / testB oIoU 67.50 / 69.55 / 64.77.
# Inside SAM's image encoder only the DIT projections train
# (the neck too is frozen); BERT, W_o, prompt encoder and mask decoder train.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(trainable=('text_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
