# Not a paper table row: L-DIT at the tiny EVF-SAM's CPU budget on SynthRef.
# L-DIT at the tiny EVF-SAM's budget on SynthRef (CPU): 1400 iterations of 8 images, the same
# schedule, data and metric as configs/evf_sam/evf-tiny_synthref.py; `model=`, the tokenizer
# (BERT) and the expressions per image differ; DIT has no BEiT-3 view (mm_size=None):
# ../_base_/datasets/synthref_dit.py.
_base_ = [
    '../_base_/models/dit_tiny.py',
    '../_base_/datasets/synthref_dit.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]

# DIT runs the image encoder once per expression: one expression per image and read keeps the
# tiny EVF-SAM's compute (8 image-encoder passes per iteration; EVF-SAM: 8 images, ~27 texts).
train_dataloader = dict(dataset=dict(max_expressions=1))

# SAM's IoU head, point / mask prompt layers and BERT's pooler get no gradient (DDP).
find_unused_parameters = True
