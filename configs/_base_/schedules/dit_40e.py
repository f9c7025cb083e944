# DIT's recipe (Huang et al., 2024; ../shared/reference/dit.md): Adam 1e-4, 3 warm-up epochs,
# x0.2 at epochs 30 and 35, 40 epochs of a 64-expression batch (4 GPUs x 16), validation and a
# checkpoint every epoch, the best RefCOCO val cIoU kept. It carries the runtime (mmengine
# allows a key such as default_hooks in one base only), so a DIT config lists it instead of
# default_runtime.
_base_ = ['../default_runtime.py']

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
# the batch the learning rate above was tuned for: 16 per GPU x 4 GPUs
auto_scale_lr = dict(enable=False, base_batch_size=64)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=2,
                    save_best='refcoco_val/cIoU', rule='greater'))
log_processor = dict(by_epoch=True)
