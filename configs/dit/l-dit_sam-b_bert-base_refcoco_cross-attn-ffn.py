# DIT paper Tab. 4, "cross attention + FFN": as ..._cross-attn.py with a feed-forward sub-layer
# (ReLU, 4d hidden, residual + LayerNorm) after each cross attention.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(injector=dict(injection='cross_attn_ffn', cross_attn_heads=8))
