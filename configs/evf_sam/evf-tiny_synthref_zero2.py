# The embedded default under DeepSpeed ZeRO-2 (FlexibleRunner), as the paper's ..._zero2.py:
# bf16, gradient accumulation and clipping in the strategy. Runs on CPUs over gloo:
#   tools/dist_train.sh configs/evf_sam/evf-tiny_synthref_zero2.py 2 [--resume]
_base_ = ['./evf-tiny_synthref.py', '../_base_/strategies/deepspeed_zero2_tiny_cpu.py']

# the non-DeepSpeed config's optimizer (AdamW 1e-3), stepped by DeepSpeed
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=_base_.optim_wrapper.optimizer)
# two processes: half the per-process batch keeps the global batch of evf-tiny_synthref.py
train_dataloader = dict(batch_size=4)
