# DIT paper Tab. 1 "Add 2 decoder layers": the Default baseline with SAM's two-way decoder
# transformer 2 -> 4 layers; the 2 added layers (transformer.layers.2-3) start from scratch,
# the rest loads SAM ViT-B's decoder.
_base_ = ['./default_sam-b_bert-base_refcoco.py']

model = dict(
    prompt_head=dict(
        transformer=dict(depth=4, mlp_dim=2048, num_heads=8),
        init_cfg=dict(ignore_missing=('mask_decoder.transformer.layers.2.',
                                      'mask_decoder.transformer.layers.3.'))))
