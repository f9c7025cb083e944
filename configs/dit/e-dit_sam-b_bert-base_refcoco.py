# DIT paper, E-DIT_B on RefCOCO (full fine-tune): Tab. 1 E-DIT / Tab. 2 E-DIT dynamic / Tab. 3
# E-DIT × ×, RefCOCO val / testA / testB oIoU 68.07 / 70.81 / 65.58 (paper_tables.md).
# E-DIT_B: the text enters once (W_0) and is carried through all blocks (text queries attend to
# the whole grid and the text, text MLP), re-projected between blocks as in the released code.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(injector=dict(mode='end_to_end', e2e_layer_proj=True))
