# Not a paper table row: L-DIT_B as the released code trains it (no figure for ViT-B; the
# released checkpoint's 76.2 val oIoU is L-DIT_H, dit.md finding 9).
# L-DIT_B as the released code trains it (wysnzzzz/DIT config/layer_wise.yaml, dit.md finding 7):
# 3 warm-up epochs from 1e-7, then cosine to 1e-6; Adam betas (0.9, 0.98), eps 1e-9; gradient
# norm clipped at 0.15; EMA 0.9997 of the weights for evaluation and saving; BERT layer 1 and
# unmasked [PAD] tokens in the encoder and as decoder prompts (the released behaviour).
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(output_layer=1),
    injector=dict(mask_text_padding=False),
    mask_text_padding=False)
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0),
    clip_grad=dict(max_norm=0.15))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=3, end={{_base_.max_epochs}},
         T_max=37, eta_min=1e-6, convert_to_iter_based=True),
]
# mmengine's EMA: averaged = (1 - momentum) * averaged + momentum * model
custom_hooks = [
    dict(type='InvalidLossHook'),
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.0003,
         update_buffers=True, priority=49),
]
