# The embedded default (`make demo`): a small EVF-SAM trained on SynthRef on a CPU.
_base_ = [
    '../_base_/models/evf-sam_tiny.py',
    '../_base_/datasets/synthref.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]

# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
