# The embedded default's multi-task twin: the tiny EVF-SAM of evf-tiny_synthref.py, in its
# budget (1400 iterations of 8 images), trained on SynthRef and its multi-task twins
# (tools/dataset_converters/make_synthref_twins.py data/synthref_twins):
#   SynthRef : semantic (ADE20K layout) : parts (PartImageNet COCO layout)
#   : humanparsing (ATR layout) = 16 : 4 : 2 : 2
# as the released multitask recipe weighs RefCOCO : ADE20K : PartImageNet : HumanParsing.
# Validation: SynthRef val (best checkpoint by its cIoU). tools/test.py scores SynthRef
# val / testA / testB and the three twins' val sets in one run, one row per source.
_base_ = ['./evf-tiny_synthref.py']

twins_root = 'data/synthref_twins/'
# metainfo keys that differ between the sources: ignored when concatenating them
mixed_meta_keys = ['classes', 'palette', 'label_map', 'reduce_zero_label']
semantic_test_pipeline = [
    dict(t, with_label=True) if t['type'] == 'mmdet.LoadAnnotations' else t
    for t in _base_.test_pipeline
]
semantic = dict(
    type='BaseSemanticReferDataset',
    data_root=twins_root + 'semantic/',
    metainfo=dict(classes=('circle', 'square', 'triangle')),
    reduce_zero_label=True)  # raw 0 is the unlabelled floor, as ADE20K's "other"
parts = dict(type='CocoPartDataset', data_root=twins_root + 'parts/')
humans = dict(
    type='HumanParsingDataset',
    data_root=twins_root + 'humanparsing/',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'))

train_mode = dict(text_mode='random', max_expressions=3, pipeline=_base_.train_pipeline)
test_mode = dict(text_mode='original', test_mode=True, pipeline=_base_.test_pipeline)
train_dataloader = dict(
    sampler=dict(
        _delete_=True, type='RatioSourceSampler', batch_size=8, source_ratio=[16, 4, 2, 2]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=mixed_meta_keys,
        datasets=[
            _base_.train_dataloader.dataset,
            dict(**semantic, **train_mode,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')),
            dict(**parts, **train_mode, ann_file='annotations/train/train.json',
                 data_prefix=dict(img_path='images/train/')),
            dict(**humans, **train_mode, ann_file='train.txt'),
        ]))

test_sources = [
    *[(f'synthref_{split}', dict(**_base_.synthref, split=split, text_mode='original',
                                 pipeline=_base_.test_pipeline))
      for split in _base_.test_splits],
    ('semantic_val', dict(
        **semantic, **dict(test_mode, pipeline=semantic_test_pipeline),
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'))),
    ('parts_val', dict(**parts, **test_mode, ann_file='annotations/val/val.json',
                       data_prefix=dict(img_path='images/val/'))),
    ('humanparsing_val', dict(**humans, **test_mode, ann_file='val.txt')),
]
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiSplitDataset',
        ignore_keys=mixed_meta_keys,
        datasets=[dataset for _, dataset in test_sources]))
refer_metrics = [dict(type='ReferSegMetric'), dict(type='TextFollowingMetric')]
test_evaluator = dict(
    _delete_=True,
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='MetricGroup', metrics=refer_metrics)] * len(_base_.test_splits) + [
        dict(type='MetricGroup',
             metrics=[*refer_metrics,
                      dict(type='SemanticIoUMetric', num_classes=3, iou_metrics=['mIoU'])]),
        dict(type='MetricGroup', metrics=refer_metrics),
        dict(type='MetricGroup', metrics=refer_metrics),
    ],
    dataset_prefixes=[prefix for prefix, _ in test_sources])
