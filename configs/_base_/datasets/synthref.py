# SynthRef, the embedded default (tools/dataset_converters/make_synthref.py data/synthref):
#   data/synthref/images/*.jpg, data/synthref/synthref/{instances.json, refs(unc).p},
#   data/synthref/tokenizer/ (its XLM-R-style sentencepiece model).
# Same pipelines as RefCOCO, at the tiny model's sizes (SAM branch 256, BEiT-3 branch 64).
data_root = 'data/synthref/'
tokenizer = data_root + 'tokenizer'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=256, mm_size=64),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=32),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMResize', sam_size=256, mm_size=64),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer),
    dict(type='PackReferInputs'),
]
synthref = dict(
    type='ReferSegDataset',
    data_root=data_root,
    data_prefix=dict(img_path='images/'),
    ann_file='synthref/instances.json',
    split_file='synthref/refs(unc).p')

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **synthref, split='train', text_mode='random', num_sentences=1, max_expressions=None,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**synthref, split='val', text_mode='original', pipeline=test_pipeline))
# tools/test.py scores val, testA and testB in one run (keys synthref_val/cIoU, ...)
test_splits = ['val', 'testA', 'testB']
test_dataloader = dict(
    val_dataloader,  # the same loader settings
    dataset=dict(
        type='MultiSplitDataset',
        datasets=[
            dict(**synthref, split=split, text_mode='original', pipeline=test_pipeline)
            for split in test_splits
        ]))
# cIoU & co. and whether the masks follow the text (crossIoU: the overlap of the masks predicted
# for different objects of an image, lower is better)
val_evaluator = [dict(type='ReferSegMetric', prefix='synthref_val'),
                 dict(type='TextFollowingMetric', prefix='synthref_val')]
test_evaluator = dict(
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='MetricGroup', metrics=[dict(type='ReferSegMetric'),
                                               dict(type='TextFollowingMetric')])
             for _ in test_splits],
    dataset_prefixes=[f'synthref_{split}' for split in test_splits])
