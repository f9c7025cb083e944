# Not a paper row: the embedded default (evf-tiny_synthref.py: same model, budget and schedule)
# on SynthRef-G (expressions naming one object, several or none, as gRefCOCO), with a
# NoTargetHead on SAM's IoU token. Compare with evf-tiny-nohead_synthref-g.py.
_base_ = [
    '../_base_/models/evf-sam_tiny.py',
    '../_base_/datasets/synthref_g.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]

# New weights, trained with the rest; the mask losses count the target expressions only.
model = dict(no_target_head=dict(type='NoTargetHead'))

# gIoU, GRES's headline figure: unlike cIoU it credits a correct "no target"
default_hooks = dict(checkpoint=dict(save_best='synthref_g_val/gIoU'))
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
