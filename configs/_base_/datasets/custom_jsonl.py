# Your own data in mmevf's plain format (docs/user_guides/custom_data.md): one JSON Lines file
# per split, image (and mask PNG) paths relative to data_root:
#   data/custom/train.jsonl, data/custom/val.jsonl
# Pipelines and loaders as RefCOCO's (refcoco.py: SAM branch 1024, BEiT-3 view 224, 3
# expressions per image drawn afresh in training). An expression may name several objects or
# none, so the metric is ReLA's GReferSegMetric (cIoU, gIoU, N-acc, T-acc, Pr@k; on data
# where every expression names an object its cIoU / gIoU are ReferSegMetric's).
_base_ = ['./refcoco.py']

data_root = 'data/custom/'
custom = dict(type='JsonlReferSegDataset', data_root=data_root)

train_dataloader = dict(
    dataset=dict(
        _delete_=True, **custom, ann_file='train.jsonl', text_mode='random',
        num_sentences=None, max_expressions=3, pipeline=_base_.train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True, **custom, ann_file='val.jsonl', text_mode='original',
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(_delete_=True, type='GReferSegMetric', prefix='custom_val')
test_evaluator = val_evaluator
