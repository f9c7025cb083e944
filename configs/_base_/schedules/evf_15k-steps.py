# EVF-SAM's recipe (paper, Sec. 4.1): AdamW, lr 1e-4 with linear decay, 15k iterations of a
# 128-sample batch (16 per GPU x 4 GPUs x gradient accumulation 2), mixed precision.
# One MMEngine iteration is one micro-batch, so 15k optimizer steps = 30k iterations.
# Betas / weight decay / warm-up follow LISA's train_ds.py, which EVF-SAM was built from.
optim_wrapper = dict(
    type='AnyDeviceAmpOptimWrapper',
    dtype='bfloat16',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0),
    accumulative_counts=2,
    clip_grad=dict(max_norm=1.0))
max_iters = 30000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=200,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# the batch the learning rate above was tuned for: 16 per GPU x 4 GPUs x 2 accumulation
auto_scale_lr = dict(enable=False, base_batch_size=128)
