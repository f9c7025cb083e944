# Not a paper table row: tiny twin of default-add4_sam-b_bert-base_refcoco.py (Tab. 1 "Add 4
# decoder layers": the tiny decoder 2 -> 6 two-way layers) on SynthRef (CPU).
_base_ = ['./default-tiny_synthref.py']

model = dict(prompt_head=dict(transformer=dict(depth=6)))
