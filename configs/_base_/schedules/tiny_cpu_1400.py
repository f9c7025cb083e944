# The embedded default's CPU budget (about 10 minutes on 2 cores for the tiny EVF-SAM):
# 1400 iterations, AdamW 1e-3 with 100 warm-up iterations then linear decay to 0, validation
# every 350 iterations, the best val cIoU kept. It carries the runtime (mmengine allows a key
# such as default_hooks in one base only), so a tiny config lists it instead of default_runtime.
_base_ = ['../default_runtime.py']

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
