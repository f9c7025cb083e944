# L-DIT_B on RefCOCO, the paper's recipe (Huang et al., 2024; ../shared/reference/dit.md):
# 512² input keeping the aspect ratio, colour jitter, text-aware horizontal flip, 20 BERT tokens,
# Adam 1e-4 with 3 warm-up epochs and x0.2 at epochs 30 and 35, 40 epochs, batch 64
# (4 GPUs x 16), evaluation at sigmoid > 0.35. Same dataset classes, metric and tools as EVF-SAM.
_base_ = [
    '../_base_/models/dit_l-dit_sam-b_bert-base.py',
    '../_base_/datasets/refcoco.py',
    '../_base_/default_runtime.py',
]
tokenizer = 'checkpoints/bert-base-uncased'  # BERT's vocab.txt (lower-cased WordPiece)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    # longest side 512 keeping the ratio (padding in the data preprocessor); DIT does not use
    # EVFResize's BEiT-3 view, which is kept minimal
    dict(type='EVFResize', sam_size=512, beit_size=None),
    dict(type='TextAwareRandomFlip', prob=0.5),  # swaps "left" / "right" in the text
    # ColorJitter(0.4, 0.4, 0.4) with p=0.8 (released code), as mmdet's photometric distortion
    dict(type='RandomApply', prob=0.8, transforms=[
        dict(type='mmdet.PhotoMetricDistortion', brightness_delta=48,
             contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4), hue_delta=0)]),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='EVFResize', sam_size=512, beit_size=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
# DIT's batch counts expressions and the encoder runs once per expression: one random
# expression of one ref per image and read, 16 per GPU.
train_dataloader = dict(
    batch_size=16,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(num_sentences=1, max_expressions=1, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 40
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, milestones=[30, 35], gamma=0.2, begin=0,
         end=max_epochs),
]
auto_scale_lr = dict(enable=False, base_batch_size=64)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=2,
                    save_best='refcoco_val/cIoU', rule='greater'))
log_processor = dict(by_epoch=True)
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
