# The paper's run with DeepSpeed ZeRO-2 (FlexibleRunner): bf16, gradient accumulation and
# clipping live in the strategy.
#   tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_refcoco_zero2.py 4
_base_ = ['./evf-beit3l_sam-h_refcoco.py', '../_base_/strategies/deepspeed_zero2.py']

# the AMP config's optimizer (AdamW 1e-4), stepped by DeepSpeed
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=_base_.optim_wrapper.optimizer)
# As in the AMP config, 30k micro-batch iterations = 15k optimizer steps.
