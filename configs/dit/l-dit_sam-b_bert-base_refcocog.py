# DIT paper Tab. 5, L-DIT_B on RefCOCOg: L-DIT_B's recipe (l-dit_sam-b_bert-base_refcoco.py)
# on RefCOCOg's train split (../_base_/datasets/refcocog_dit.py).
_base_ = [
    '../_base_/models/dit_l-dit_sam-b_bert-base.py',
    '../_base_/datasets/refcocog_dit.py',
    '../_base_/schedules/dit_40e.py',
]

# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
