# The tiny twin of evf-beit3l_sam-h_finetune-custom.py, which a CPU runs in a minute: fine-tunes
# the embedded default's checkpoint (`make demo`: work_dirs/evf-tiny_synthref/iter_1400.pth) on
# data/custom/ (docs/user_guides/custom_data.md). Same changes to its recipe as the paper-scale
# twin: the trained weights as the start, a 10x lower learning rate (1e-4), a short schedule.
_base_ = [
    '../_base_/models/evf-sam_tiny.py',
    '../_base_/datasets/custom_jsonl.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]

load_from = 'work_dirs/evf-tiny_synthref/iter_1400.pth'

# the demo model's input sizes and tokenizer (configs/_base_/datasets/synthref.py)
tiny_inputs = dict(SAMResize=dict(sam_size=256, mm_size=64),
                   TokenizeText=dict(tokenizer='data/synthref/tokenizer', max_length=32))
train_pipeline = [dict(t, **tiny_inputs.get(t['type'], {})) for t in _base_.train_pipeline]
test_pipeline = [dict(t, **tiny_inputs.get(t['type'], {})) for t in _base_.test_pipeline]
train_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(max_expressions=None, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 100
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=10,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=50)
default_hooks = dict(
    checkpoint=dict(interval=50, max_keep_ckpts=2, save_best='custom_val/cIoU'))
# SAM's IoU head and point / mask prompt layers get no gradient from the mask loss (DDP).
find_unused_parameters = True
