# EVF-SAM, the paper's model: BEiT-3-L + SAM-H (1.32B parameters).
_base_ = [
    '../_base_/models/evf-sam_beit3-l_sam-h.py',
    '../_base_/default_runtime.py',
]
