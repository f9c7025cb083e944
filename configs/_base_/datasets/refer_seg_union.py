# Training on the union of the RefCLEF, RefCOCO, RefCOCO+ and RefCOCOg train splits, as
# EVF-SAM does: each sample's source is drawn uniformly (mmdet's MultiSourceSampler with equal
# ratios puts batch_size / 4 images of every source in each batch), then its image, then 3 of
# that image's sentences. Validation and tests come from refcoco_8splits.py.
_base_ = ['./refcoco_8splits.py']

batch_size = 16
refer_train_sets = [
    # (data_root, image prefix, ann_file, refs file)
    ('data/', 'saiapr_tc-12/', 'refclef/instances.json', 'refclef/refs(unc).p'),
    ('data/coco/', 'train2014/', 'refcoco/instances.json', 'refcoco/refs(unc).p'),
    ('data/coco/', 'train2014/', 'refcoco+/instances.json', 'refcoco+/refs(unc).p'),
    ('data/coco/', 'train2014/', 'refcocog/instances.json', 'refcocog/refs(umd).p'),
]
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(
        _delete_=True,
        type='mmdet.MultiSourceSampler',
        batch_size=batch_size,
        source_ratio=[1] * len(refer_train_sets)),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='ReferSegDataset', data_root=root, data_prefix=dict(img_path=prefix),
                 ann_file=ann, split_file=refs, split='train', text_mode='random',
                 num_sentences=None, max_expressions=3, pipeline=_base_.train_pipeline)
            for root, prefix, ann, refs in refer_train_sets
        ]))
