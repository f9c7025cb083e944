# The embedded default (`make demo`): a small EVF-SAM trained on SynthRef on a CPU.
_base_ = [
    '../_base_/models/evf-sam_tiny.py',
    '../_base_/datasets/synthref.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=1400, val_interval=350)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=100,
         end=1400),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=350, max_keep_ckpts=2, save_best='synthref_val/cIoU',
                    rule='greater'))
randomness = dict(seed=0)
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
