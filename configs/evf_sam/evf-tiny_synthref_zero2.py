# The embedded default under DeepSpeed ZeRO-2 (FlexibleRunner), as the paper's ..._zero2.py:
# bf16, gradient accumulation and clipping in the strategy. Runs on CPUs over gloo:
#   tools/dist_train.sh configs/evf_sam/evf-tiny_synthref_zero2.py 2 [--resume]
_base_ = ['./evf-tiny_synthref.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=1.0,
    gradient_accumulation_steps=1,
    zero_optimization=dict(
        stage=2,
        overlap_comm=False,
        contiguous_gradients=True,
        reduce_scatter=True,
        allgather_bucket_size=5e7,
        reduce_bucket_size=5e7),
    exclude_frozen_parameters=True)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
# two processes: half the per-process batch keeps the global batch of evf-tiny_synthref.py
train_dataloader = dict(batch_size=4)
