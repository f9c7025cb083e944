# Shared by the EVF-Effi-SAM paper configs: EVF-SAM's BEiT-3-L model, RefCOCO data, EVF-SAM's
# schedule, with EfficientSAM-S in place of SAM-H and EfficientSAM's input (the image stretched
# to 1024 x 1024, PIL bilinear, ImageNet mean / std in 0-255: SAM's numbers).
# Run from the repository root with it on PYTHONPATH (tools/dist_train.sh sets it).
_base_ = [
    '../../../configs/_base_/models/evf-sam_beit3-l_sam-h.py',
    '../../../configs/_base_/datasets/refcoco.py',
    '../../../configs/_base_/schedules/evf_15k-steps.py',
    '../../../configs/_base_/default_runtime.py',
]
custom_imports = dict(imports=['projects.EVF-Effi-SAM.evf_effi_sam'], allow_failed_imports=False)

# Official EfficientSAM weights (yformer/EfficientSAM: weights/efficient_sam_vits.pt, keys
# image_encoder.* / prompt_encoder.* / mask_decoder.*, i.e. the 'sam' layout's names).
effisam_checkpoint = 'checkpoints/efficient_sam_vits.pt'

model = dict(
    type='EVFEffiSAM',
    image_encoder=dict(
        _delete_=True,
        type='EfficientSAMImageEncoder', arch='vit_s', img_size=1024, frozen=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=effisam_checkpoint, layout='sam',
                      prefix='image_encoder.')),
    prompt_head=dict(
        _delete_=True,
        type='EfficientSAMPromptHead',
        multimask_output=False,  # EVF-Effi: mask token 0
        init_cfg=dict(type='StrictPretrained', checkpoint=effisam_checkpoint, layout='sam',
                      prefix='prompt_head.'),
        loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
            eps=1e-3, loss_weight=1.0)))

tokenizer = 'checkpoints/xlmr'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='EffiSAMResize', sam_size=1024, mm_size=224),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=128),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='EffiSAMResize', sam_size=1024, mm_size=224),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

default_hooks = dict(
    checkpoint=dict(interval=2000, max_keep_ckpts=3, save_best='refcoco_val/cIoU',
                    rule='greater'))
# The IoU head and the point / box embeddings get no gradient from the mask loss.
find_unused_parameters = True
