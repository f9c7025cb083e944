# Fine-tune the released EVF-SAM (BEiT-3-L + SAM-H) on your own data in mmevf's plain format
# (docs/user_guides/custom_data.md walks through it, labelme folder to inference):
#   python tools/model_converters/evf_sam2mmevf.py checkpoints/evf-sam checkpoints/evf_sam.pth
#   tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_finetune-custom.py 4
# What trains is the paper's row (evf-beit3l_sam-h_refcoco.py): multimodal encoder, projector
# and SAM's prompt encoder + mask decoder, SAM's image encoder frozen, BCE + dice, AdamW in
# bf16 with a 128-sample batch (16 per GPU x 4 GPUs x 2 accumulation). Changed for a start
# from trained weights: the released checkpoint instead of SAM + BEiT-3 (load_from), a 10x
# lower learning rate (1e-5), 2,000 iterations (1,000 optimizer steps) with 50 of warm-up.
_base_ = [
    '../_base_/models/evf-sam_beit3-l_sam-h.py',
    '../_base_/datasets/custom_jsonl.py',
    '../_base_/schedules/evf_15k-steps.py',
    '../_base_/default_runtime.py',
]

load_from = 'checkpoints/evf_sam.pth'
# the converted checkpoint holds every weight: SAM's and BEiT-3's files are not read
model = dict(
    image_encoder=dict(init_cfg=None),
    mm_encoder=dict(init_cfg=None),
    prompt_head=dict(init_cfg=None))

# the tokenizer evf_sam2mmevf.py copied beside the checkpoint
tokenizer = 'checkpoints/evf_sam_tokenizer'
train_pipeline = [dict(t, tokenizer=tokenizer) if t['type'] == 'TokenizeText' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, tokenizer=tokenizer) if t['type'] == 'TokenizeText' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 2000
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(
    checkpoint=dict(interval=500, max_keep_ckpts=2, save_best='custom_val/cIoU',
                    rule='greater'))
# The IoU head and the point / mask prompt layers get no gradient from the mask loss.
find_unused_parameters = True
