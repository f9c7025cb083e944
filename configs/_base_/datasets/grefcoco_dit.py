# gRefCOCO as DIT reads it: grefcoco.py's datasets, splits and metric through DIT's RefCOCO
# pipelines (refcoco_dit.py: longest side 512 keeping the ratio, no BEiT-3 view, colour jitter,
# text-aware horizontal flip, Gaussian blur, 20 BERT tokens; copied here, a test keeps them
# equal) and its sampling: one random expression of one ref per image and read, 16 per GPU.
_base_ = ['./grefcoco.py']
tokenizer = 'checkpoints/bert-base-uncased'  # BERT's vocab.txt (lower-cased WordPiece)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=512, mm_size=None),
    dict(type='TextAwareRandomFlip', prob=0.5),  # swaps "left" / "right" in the text
    dict(type='RandomApply', prob=0.8, transforms=[
        dict(type='mmdet.PhotoMetricDistortion', brightness_delta=48,
             contrast_range=(0.6, 1.4), saturation_range=(0.6, 1.4), hue_delta=0)]),
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
# the base's val / testA / testB datasets, read through this test pipeline
test_dataloader = dict(
    dataset=dict(datasets=[
        dict(dataset, pipeline=test_pipeline)
        for dataset in _base_.test_dataloader.dataset.datasets
    ]))
# The evaluators stay grefcoco.py's GReferSegMetric (GRES's gIoU, cIoU, N-acc, T-acc,
# Pr@0.7-0.9), not DIT's RefCOCO list (mIoU, P@0.5), so EVF-SAM and DIT compare key for key.
