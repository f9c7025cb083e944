# The embedded default (`make demo`): a small EVF-SAM trained on SynthRef on a CPU.
_base_ = [
    '../_base_/models/evf-sam_tiny.py',
    '../_base_/datasets/synthref.py',
    '../_base_/schedules/tiny_cpu_1400.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=350, max_keep_ckpts=2, save_best='synthref_val/cIoU',
                    rule='greater'))
randomness = dict(seed=0)

# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
