# EVF-SAM multitask (the released `evf-sam-multitask` recipe): the paper's model and schedule
# of evf-beit3l_sam-h_refcoco.py, trained on
#   RefCOCO family (RefCLEF, RefCOCO, RefCOCO+, RefCOCOg; uniform, as the official code)
#   : Objects365 : ADE20K : PartImageNet : HumanParsing : PASCAL-Part = 16 : 4 : 4 : 2 : 2 : 1
# (maintainers, EVF-SAM issue #41), each sample's source drawn by RatioSourceSampler.
# Validation: RefCOCO val. tools/test.py scores the eight RefCOCO-family splits and ADE20K val
# (every class present, `[semantic] {class}`; also mmseg's mIoU, see ade20k_semantic.py) in
# one run, keys `<source>/cIoU`, ...
#   tools/dist_train.sh configs/evf_sam/evf-beit3l_sam-h_multitask.py 4
_base_ = [
    '../_base_/models/evf-sam_beit3-l_sam-h.py',
    '../_base_/datasets/mapillary_semantic.py',  # stacks every multitask source
    '../_base_/schedules/evf_15k-steps.py',
    '../_base_/default_runtime.py',
]

# sources in the order of source_ratio: 4 x RefCOCO family (16 together), Objects365,
# ADE20K, PartImageNet, HumanParsing, PASCAL-Part
train_datasets = [
    *_base_.res_train_datasets,
    _base_.objects365_train,
    _base_.ade20k_train,
    _base_.partimagenet_train,
    _base_.humanparsing_train,
    _base_.pascal_part_train,
]
train_dataloader = dict(
    batch_size=_base_.batch_size,
    sampler=dict(
        _delete_=True,
        type='RatioSourceSampler',
        batch_size=_base_.batch_size,
        source_ratio=[4, 4, 4, 4, 4, 4, 2, 2, 1]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=_base_.mixed_meta_keys,
        datasets=train_datasets))

# validate on RefCOCO val as evf-beit3l_sam-h_refcoco.py (best checkpoint by its cIoU)
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        **_base_.refcoco,
        split='val',
        text_mode='original',
        pipeline=_base_.test_pipeline))
val_evaluator = dict(_delete_=True, type='ReferSegMetric', prefix='refcoco_val')

# test: the eight RefCOCO-family splits + ADE20K val, one metric and prefix per source
test_datasets = [
    *[dict(type='ReferSegDataset',
           data_root=_base_.data_root,
           data_prefix=dict(img_path='train2014/'),
           ann_file=f'{name}/instances.json',
           split_file=f'{name}/refs({split_by}).p',
           split=split,
           text_mode='original',
           pipeline=_base_.test_pipeline) for name, split_by, split in _base_.refcoco_splits],
    _base_.ade20k_val,
]
test_prefixes = [f'{name}_{split}' for name, _, split in _base_.refcoco_splits] + ['ade20k_val']
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='MultiSplitDataset', ignore_keys=_base_.mixed_meta_keys, datasets=test_datasets))
test_evaluator = dict(
    _delete_=True,
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='ReferSegMetric') for _ in _base_.refcoco_splits] +
    [dict(type='MetricGroup', metrics=_base_.semantic_metrics)],
    dataset_prefixes=test_prefixes)

default_hooks = dict(
    checkpoint=dict(interval=2000, max_keep_ckpts=3, save_best='refcoco_val/cIoU',
                    rule='greater'))
# The IoU head and the point / mask prompt layers get no gradient from the mask loss.
find_unused_parameters = True
