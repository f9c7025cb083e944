# A small EVF-Effi-SAM for CPU runs on SynthRef: the tiny EVF-SAM's BEiT-3 and projector
# (configs/evf_sam/evf-tiny_synthref.py) with an EfficientSAM-like ViT (4 x 128 at 256²:
# 16 x 16 grid, 64-d) and EfficientSAM's decoder at 64-d, trained from scratch.
_base_ = ['../../../configs/evf_sam/evf-tiny_synthref.py']
custom_imports = dict(imports=['projects.EVF-Effi-SAM.evf_effi_sam'], allow_failed_imports=False)

model = dict(
    type='EVFEffiSAM',
    image_encoder=dict(
        _delete_=True,
        type='EfficientSAMImageEncoder',
        arch=dict(embed_dim=128, depth=4, num_heads=4),
        img_size=256,
        pretrain_img_size=64,  # a 4 x 4 (+ [CLS]) position table, resized to 16 x 16
        out_chans=64,
        frozen=False),
    prompt_head=dict(
        _delete_=True,
        type='EfficientSAMPromptHead',
        embed_dim=64,
        transformer=dict(depth=2, mlp_dim=256, num_heads=4),
        iou_head_hidden_dim=64,
        upscaling_layer_dims=(32, 16),
        mask_threshold=0.0,
        loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1e-3,
            loss_weight=1.0)),
    # the official model's layout (its converter's checkpoints load strictly): no training aid
    grounding_head=None)

tokenizer = 'data/synthref/tokenizer'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='EffiSAMResize', sam_size=256, mm_size=64),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=32),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='EffiSAMResize', sam_size=256, mm_size=64),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
synthref = dict(
    type='ReferSegDataset',
    data_root='data/synthref/',
    data_prefix=dict(img_path='images/'),
    ann_file='synthref/instances.json',
    split_file='synthref/refs(unc).p')
test_dataloader = dict(
    dataset=dict(datasets=[dict(**synthref, split=split, text_mode='original',
                                pipeline=test_pipeline) for split in ['val', 'testA', 'testB']]))
