# ADE20K as `[semantic] {class}` prompts (SemanticReferDataset over mmseg's ADE20KDataset: 150
# classes, reduce_zero_label). Folder names are the official EVF-SAM layout under the dataset
# dir (mmseg's ADEChallengeData2016 holds the same images/ and annotations/ folders):
#   data/ade20k/images/{training,validation}/*.jpg
#   data/ade20k/annotations/{training,validation}/*.png
# `tools/dataset_converters/make_synthetic_ade20k.py` writes a small synthetic set.
# Training draws up to 3 of the classes present per read (text_mode='random'). Validation and
# tests as the paper reports semantic results: every class present in a val image prompted
# with `[semantic] {class}`, cIoU / gIoU through ReferSegMetric (keys `ade20k_val/cIoU`: the
# paper's ADE20K numbers, official eval.py with val_dataset='ade'), and beside it mmseg's mIoU
# over the 150 classes of the same predictions (SemanticIoUMetric, key `ade20k_val/mIoU`; the
# classes are given, so it is not comparable with closed-set mmseg results).
# Pipelines are refcoco.py's; see objects365.py for the base chain.
_base_ = ['./parts.py']

ade20k_data_root = 'data/ade20k/'
# the class index of every prompt, for SemanticIoUMetric
semantic_test_pipeline = [
    dict(t, with_label=True) if t['type'] == 'mmdet.LoadAnnotations' else t
    for t in _base_.test_pipeline
]
semantic_metrics = [
    dict(type='ReferSegMetric'),
    dict(type='SemanticIoUMetric', num_classes=150, iou_metrics=['mIoU']),
]
ade20k_train = dict(
    type='SemanticReferDataset',
    data_root=ade20k_data_root,
    data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)
ade20k_val = dict(
    type='SemanticReferDataset',
    data_root=ade20k_data_root,
    data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    text_mode='original',
    test_mode=True,
    pipeline=semantic_test_pipeline)

train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, **ade20k_train))
val_dataloader = dict(dataset=dict(_delete_=True, **ade20k_val))
test_dataloader = val_dataloader
val_evaluator = [dict(m, prefix='ade20k_val') for m in semantic_metrics]
test_evaluator = val_evaluator
