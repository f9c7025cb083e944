# The paper's run with DeepSpeed ZeRO-2 (FlexibleRunner): bf16, gradient accumulation and
# clipping live in the strategy. tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_refcoco_zero2.py 4
_base_ = ['./evf-beit3l_sam-h_refcoco.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=1.0,
    gradient_accumulation_steps=2,
    zero_optimization=dict(
        stage=2,
        overlap_comm=True,
        contiguous_gradients=True,
        reduce_scatter=True,
        allgather_bucket_size=2e8,
        reduce_bucket_size=2e8),
    exclude_frozen_parameters=True)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0))
# As in the AMP config, 30k micro-batch iterations = 15k optimizer steps.
