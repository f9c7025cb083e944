# RefCOCO as DIT reads it (Huang et al., 2024): the longest side at 512 keeping the ratio
# (padding in the data preprocessor), no BEiT-3 view, colour jitter, text-aware horizontal flip,
# Gaussian blur, 20 BERT tokens; one random expression of one ref per image and read, 16 per GPU
# (DIT's batch counts expressions and its encoder runs once per expression). Same dataset classes,
# metric and evaluation as EVF-SAM (refcoco.py).
_base_ = ['./refcoco.py']
tokenizer = 'checkpoints/bert-base-uncased'  # BERT's vocab.txt (lower-cased WordPiece)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    # DIT does not use SAMResize's BEiT-3 view, which is kept minimal
    dict(type='SAMResize', sam_size=512, mm_size=None),
    dict(type='TextAwareRandomFlip', prob=0.5),  # swaps "left" / "right" in the text
    # ColorJitter(0.4, 0.4, 0.4) with p=0.8 (released code), as mmdet's photometric distortion
    dict(type='RandomApply', prob=0.8, transforms=[
        dict(type='mmdet.PhotoMetricDistortion', brightness_delta=48,
             contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4), hue_delta=0)]),
    # The paper lists blur without its parameters (the released code has AUG_BLUR off): ours is
    # mmpretrain's PIL Gaussian blur, radius (sigma) uniform in [0.1, 2.0], with p=0.5; image only.
    dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
         prob=0.5),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMResize', sam_size=512, mm_size=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(
    batch_size=16,
    sampler=dict(type='DefaultSampler', shuffle=True),  # epoch-based schedule
    dataset=dict(num_sentences=1, max_expressions=1, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# the paper reports oIoU (= cIoU), mIoU (mean per-expression IoU) and P@0.5 / 0.7 / 0.9
dit_metrics = ('cIoU', 'mIoU', 'gIoU', 'P@0.5', 'P@0.7', 'P@0.9')
val_evaluator = dict(metric=dit_metrics)
test_evaluator = val_evaluator
