# DIT paper Tab. 1 "Add 4 decoder layers": the Default baseline with SAM's two-way decoder
# transformer 2 -> 6 layers; the 4 added layers (transformer.layers.2-5) start from scratch.
_base_ = ['./default_sam-b_bert-base_refcoco.py']

model = dict(
    prompt_head=dict(
        transformer=dict(depth=6, mlp_dim=2048, num_heads=8),
        init_cfg=dict(ignore_missing=tuple(
            f'mask_decoder.transformer.layers.{i}.' for i in range(2, 6)))))
