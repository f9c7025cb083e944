# Not a paper row: EVF-SAM (BEiT-3-L + SAM-H) with the paper's recipe on gRefCOCO train
# (GRES / ReLA, CVPR 2023: expressions naming one object, several or none), 4 GPUs:
#   tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_grefcoco.py 4
# plus a NoTargetHead on SAM's IoU token for the no-target expressions. Validates on gRefCOCO
# val; tools/test.py scores val, testA and testB (gIoU, cIoU, N-acc, T-acc, Pr@0.7-0.9).
_base_ = [
    '../_base_/models/evf-sam_beit3-l_sam-h.py',
    '../_base_/datasets/grefcoco.py',
    '../_base_/schedules/evf_15k-steps.py',
    '../_base_/default_runtime.py',
]

# New weights, trained whatever `trainable` says; the mask losses count the target expressions
# only (an empty mask is the head's call), the prediction empties masks scored above 0.5.
model = dict(no_target_head=dict(type='NoTargetHead'))

# gIoU, GRES's headline figure: unlike cIoU it credits a correct "no target"
default_hooks = dict(
    checkpoint=dict(interval=2000, max_keep_ckpts=3, save_best='grefcoco_val/gIoU',
                    rule='greater'))
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss.
find_unused_parameters = True
