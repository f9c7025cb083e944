# RefCOCO+ as DIT reads it (refcoco_dit.py's pipelines, batch and metrics; UNC splits train /
# val / testA / testB): data/coco/refcoco+/{instances.json,refs(unc).p}
_base_ = ['./refcoco_dit.py']

train_dataloader = dict(
    dataset=dict(ann_file='refcoco+/instances.json', split_file='refcoco+/refs(unc).p'))
val_dataloader = dict(
    dataset=dict(ann_file='refcoco+/instances.json', split_file='refcoco+/refs(unc).p'))
test_dataloader = val_dataloader
val_evaluator = dict(prefix='refcoco+_val')
test_evaluator = val_evaluator
