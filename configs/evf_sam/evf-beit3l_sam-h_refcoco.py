# EVF-SAM, the paper's model: BEiT-3-L + SAM-H (1.32B parameters), trained with the paper's
# recipe on 4 GPUs:  tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_refcoco.py 4
# Trains on RefCLEF + RefCOCO + RefCOCO+ + RefCOCOg train, validates on RefCOCO val;
# tools/test.py scores the eight RefCOCO-family splits.
_base_ = [
    '../_base_/models/evf-sam_beit3-l_sam-h.py',
    '../_base_/datasets/refer_seg_union.py',
    '../_base_/schedules/evf_15k-steps.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    checkpoint=dict(interval=2000, max_keep_ckpts=3, save_best='refcoco_val/cIoU',
                    rule='greater'))
# The IoU head and the point / mask prompt layers get no gradient from the mask loss.
find_unused_parameters = True
