# The tiny SAM (configs/_base_/models/sam_tiny.py) trained as SAM is, with point / box prompts
# from SynthRef's ground-truth masks: no released SAM has the tiny architecture, so this run can
# play the part of SA-1B pre-training. `python tools/model_converters/mmevf2sam.py
# work_dirs/sam-tiny_synthref/iter_400.pth sam_tiny.pth` gives a file that the tiny EVF-SAM /
# DIT configs read through `init_cfg=dict(type='StrictPretrained', layout='sam', ...)` like
# sam_vit_h (the embedded default still trains its SAM from scratch). Point-prompted val cIoU
# 90.1 after 400 iterations, 7 minutes on 2 cores.
_base_ = [
    '../_base_/models/sam-pretrainer_vit-b.py',
    '../_base_/models/sam_tiny.py',
    '../_base_/datasets/synthref.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]

model = dict(
    image_encoder={{_base_.tiny_sam_image_encoder}},
    prompt_head={{_base_.tiny_sam_prompt_head}})

# masks only: no BEiT-3 view, no tokenizer
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=256, mm_size=None),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMResize', sam_size=256, mm_size=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = None
test_cfg = None
test_evaluator = None

train_cfg = dict(max_iters=400, val_interval=200)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=50, end=400),
]
default_hooks = dict(checkpoint=dict(interval=200, save_best=None))
