# Not a paper table row: tiny twin of l-dit_sam-b_bert-base_refcoco_cross-attn-ffn.py (Tab. 4)
# at the tiny L-DIT's budget on SynthRef (CPU); otherwise as l-dit-tiny_synthref.py.
_base_ = ['./l-dit-tiny_synthref.py']

model = dict(injector=dict(injection='cross_attn_ffn', cross_attn_heads=4))
