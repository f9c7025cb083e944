# The tiny EVF-SAM2 under DeepSpeed ZeRO-2 (FlexibleRunner, bf16), as
# configs/evf_sam/evf-tiny_synthref_zero2.py for the tiny EVF-SAM; on CPUs over gloo:
#   tools/dist_train.sh projects/EVF-SAM2/configs/evf-sam2-tiny_synthref_zero2.py 2 [--resume]
_base_ = ['./evf-sam2-tiny_synthref.py',
          '../../../configs/_base_/strategies/deepspeed_zero2_tiny_cpu.py']

optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=_base_.optim_wrapper.optimizer)
# two processes: half the per-process batch keeps the global batch of the tiny config
train_dataloader = dict(batch_size=4)
