# SynthRef as the tiny DIT reads it: synthref.py with no BEiT-3 view (mm_size=None) and
# SynthRef's BERT vocabulary (20 tokens at most) in place of its sentencepiece model.
_base_ = ['./synthref.py']
tokenizer = 'data/synthref/bert_tokenizer'  # SynthRef's BERT vocab.txt ([PAD] = 0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=256, mm_size=None),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMResize', sam_size=256, mm_size=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# the base's val / testA / testB datasets, read through this test pipeline
test_dataloader = dict(
    dataset=dict(datasets=[
        dict(dataset, pipeline=test_pipeline)
        for dataset in _base_.test_dataloader.dataset.datasets
    ]))
# DIT's metric list: oIoU (= cIoU), mIoU (mean per-expression IoU), P@0.5 / 0.7 / 0.9
dit_metrics = ('cIoU', 'mIoU', 'gIoU', 'P@0.5', 'P@0.7', 'P@0.9')
val_evaluator = [dict(type='ReferSegMetric', prefix='synthref_val', metric=dit_metrics),
                 dict(type='TextFollowingMetric', prefix='synthref_val')]
test_evaluator = dict(
    metrics=[dict(type='MetricGroup', metrics=[dict(type='ReferSegMetric', metric=dit_metrics),
                                               dict(type='TextFollowingMetric')])
             for _ in _base_.test_splits])
