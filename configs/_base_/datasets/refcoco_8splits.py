# Test on the eight RefCOCO-family splits in one run; keys such as `refcoco_val/cIoU`,
# `refcoco+_testA/gIoU`, `refcocog_test/P@0.5`. Layout: data/coco/{refcoco,refcoco+,refcocog}/.
_base_ = ['./refcoco.py']

refcoco_splits = [
    ('refcoco', 'unc', 'val'), ('refcoco', 'unc', 'testA'), ('refcoco', 'unc', 'testB'),
    ('refcoco+', 'unc', 'val'), ('refcoco+', 'unc', 'testA'), ('refcoco+', 'unc', 'testB'),
    ('refcocog', 'umd', 'val'), ('refcocog', 'umd', 'test'),
]
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiSplitDataset',
        datasets=[
            dict(type='ReferSegDataset',
                 data_root=_base_.data_root,
                 data_prefix=dict(img_path='train2014/'),
                 ann_file=f'{name}/instances.json',
                 split_file=f'{name}/refs({split_by}).p',
                 split=split,
                 text_mode='original',
                 pipeline=_base_.test_pipeline) for name, split_by, split in refcoco_splits
        ]))
test_evaluator = dict(
    _delete_=True,
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='ReferSegMetric') for _ in refcoco_splits],
    dataset_prefixes=[f'{name}_{split}' for name, _, split in refcoco_splits])
