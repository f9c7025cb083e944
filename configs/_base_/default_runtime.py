# Runtime shared by every mmevf config. Types resolve in scope `mmevf` (falling back to
# mmengine); mmdet / mmseg components carry `_scope_` (see configs/_base_/datasets/).
default_scope = 'mmevf'
custom_imports = dict(imports=['mmevf'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # written atomically (mmevf's 'atomic_local' file backend): a crash never leaves a
    # half-written checkpoint
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # draws predicted masks with their expressions; tools/test.py --show-dir switches it on
    visualization=dict(type='ReferSegVisualizationHook', draw=False))

# stop at the first NaN / infinite loss, naming the iteration
custom_hooks = [dict(type='InvalidLossHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ReferSegVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
