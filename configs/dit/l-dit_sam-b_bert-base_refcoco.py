# DIT paper, L-DIT_B on RefCOCO (full fine-tune): 71.98 val oIoU (dit.md §7.4); 208.1M
# parameters, all trainable but BERT's unused pooler (§5.3).
# L-DIT_B on RefCOCO, the paper's recipe (Huang et al., 2024; ../shared/reference/dit.md):
# 512² input keeping the aspect ratio, colour jitter, text-aware horizontal flip, 20 BERT tokens
# (../_base_/datasets/refcoco_dit.py), Adam 1e-4 with 3 warm-up epochs and x0.2 at epochs 30 and
# 35, 40 epochs, batch 64 (4 GPUs x 16) (../_base_/schedules/dit_40e.py), evaluation at
# sigmoid > 0.35. Same dataset classes, metric and tools as EVF-SAM.
_base_ = [
    '../_base_/models/dit_l-dit_sam-b_bert-base.py',
    '../_base_/datasets/refcoco_dit.py',
    '../_base_/schedules/dit_40e.py',
]

# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
