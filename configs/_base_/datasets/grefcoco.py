# gRefCOCO (GRES / ReLA, CVPR 2023): expressions naming one object, several (the target is the
# union of their masks) or none (an empty mask, `no_target` in the metainfo). ReLA's layout:
#   data/grefcoco/{grefs(unc).json, instances.json}
#   data/images/train2014/COCO_train2014_*.jpg   (a link to data/coco/train2014/ will do)
# EVF-SAM's RefCOCO pipelines, loaders and sampling (refcoco.py): training draws 3 expressions
# per image afresh at every read, evaluation reads every sentence at the original image size.
_base_ = ['./refcoco.py']
data_root = 'data/'

grefcoco = dict(
    type='GReferSegDataset',
    data_root=data_root,
    data_prefix=dict(img_path='images/train2014/'),
    ann_file='grefcoco/instances.json',
    split_file='grefcoco/grefs(unc).json')

# refcoco.py's train / val settings (split, text_mode, sentences, pipelines) on gRefCOCO
train_dataloader = dict(dataset=grefcoco)
val_dataloader = dict(dataset=grefcoco)
# tools/test.py scores val, testA and testB in one run (keys grefcoco_val/gIoU, ...), with
# refcoco.py's test loader settings (those of its val loader)
test_splits = ['val', 'testA', 'testB']
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiSplitDataset',
        datasets=[
            dict(**grefcoco, split=split, text_mode='original', pipeline=_base_.test_pipeline)
            for split in test_splits
        ]))
# ReLA's gIoU / cIoU / N-acc / T-acc / Pr@k. No TextFollowingMetric: expressions of one image may
# name overlapping sets of objects or none, so overlapping (or empty) masks are no failure here.
val_evaluator = dict(_delete_=True, type='GReferSegMetric', prefix='grefcoco_val')
test_evaluator = dict(
    _delete_=True,
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='GReferSegMetric') for _ in test_splits],
    dataset_prefixes=[f'grefcoco_{split}' for split in test_splits])
