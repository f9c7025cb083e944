# RefCOCOg as DIT reads it (refcoco_dit.py's pipelines, batch and metrics; UMD splits train /
# val / test): data/coco/refcocog/{instances.json,refs(umd).p}
_base_ = ['./refcoco_dit.py']

train_dataloader = dict(
    dataset=dict(ann_file='refcocog/instances.json', split_file='refcocog/refs(umd).p'))
val_dataloader = dict(
    dataset=dict(ann_file='refcocog/instances.json', split_file='refcocog/refs(umd).p'))
test_dataloader = dict(
    dataset=dict(
        ann_file='refcocog/instances.json', split_file='refcocog/refs(umd).p', split='test'))
val_evaluator = dict(prefix='refcocog_val')
test_evaluator = dict(type='ReferSegMetric', prefix='refcocog_test',
                      metric={{_base_.dit_metrics}})
