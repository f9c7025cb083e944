# EVF-SAM2 (BEiT-3-L + SAM-2-L) under DeepSpeed ZeRO-2 (FlexibleRunner), as EVF-SAM's
# configs/evf_sam/evf-beit3l_sam-h_refcoco_zero2.py: bf16, gradient accumulation 2 and clipping
# in the strategy; SAM-2 frozen (and left out of the checkpoints), BEiT-3 + projector trained.
#   tools/dist_train.sh projects/EVF-SAM2/configs/evf-sam2_beit3l_sam2-l_refcoco_zero2.py 4
_base_ = ['./evf-sam2_beit3l_sam2-l_refcoco.py',
          '../../../configs/_base_/strategies/deepspeed_zero2.py']

# the AMP config's optimizer (AdamW 1e-4), stepped by DeepSpeed
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    constructor='TrainableParamsOptimWrapperConstructor',
    optimizer=_base_.optim_wrapper.optimizer)
