# DIT paper Tab. 4, "multi-head cross attention": L-DIT_B with block i's text tokens from a
# cross attention of the BERT features (queries) over the block's visual input, in place of
# the linear projection P_i (TextCrossAttention: 8 heads, residual + LayerNorm).
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(injector=dict(injection='cross_attn', cross_attn_heads=8))
