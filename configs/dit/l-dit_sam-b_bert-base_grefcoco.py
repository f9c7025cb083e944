# Not a paper row: L-DIT_B with the paper's recipe (l-dit_sam-b_bert-base_refcoco.py: 512²
# keeping the ratio, DIT's augmentations, 20 BERT tokens, Adam 1e-4, 40 epochs, batch 64 on
# 4 GPUs, threshold 0.35) on gRefCOCO train (GRES / ReLA: expressions naming one object,
# several or none; ../_base_/datasets/grefcoco_dit.py), plus a NoTargetHead on SAM's IoU token.
# Same dataset class, metric (GReferSegMetric) and tools as evf-beit3l_sam-h_grefcoco.py.
_base_ = [
    '../_base_/models/dit_l-dit_sam-b_bert-base.py',
    '../_base_/datasets/grefcoco_dit.py',
    '../_base_/schedules/dit_40e.py',
]

# New weights, trained whatever `trainable` says; the mask loss counts the target expressions
# only, the prediction empties masks scored above 0.5.
model = dict(no_target_head=dict(type='NoTargetHead'))

# gIoU, GRES's headline figure: unlike cIoU it credits a correct "no target"
default_hooks = dict(checkpoint=dict(save_best='grefcoco_val/gIoU'))
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
