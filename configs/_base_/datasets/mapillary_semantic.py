# Mapillary Vistas v2.0 as `[semantic] {class}` prompts (MapillaryReferDataset over mmseg's
# MapillaryDataset_v2: 124 classes, names lower-cased, 'Unlabeled' ignored). Layout (mmseg's,
# and the official code's `mapillary/` under the dataset dir):
#   data/mapillary/{training,validation}/images/*.jpg
#   data/mapillary/{training,validation}/v2.0/labels/*.png
# `tools/dataset_converters/make_synthetic_mapillary.py` writes a small synthetic set.
# Training draws up to 3 of the classes present per read; validation prompts every class
# present (keys `mapillary_val/cIoU`, ...; mmseg's mIoU over the 124 classes beside it, as for
# ADE20K). Pipelines are refcoco.py's; see objects365.py for
# the base chain (refer_seg_union <- objects365 <- parts <- ade20k_semantic <- this).
_base_ = ['./ade20k_semantic.py']

mapillary_data_root = 'data/mapillary/'
mapillary_train = dict(
    type='MapillaryReferDataset',
    data_root=mapillary_data_root,
    data_prefix=dict(img_path='training/images', seg_map_path='training/v2.0/labels'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)
mapillary_val = dict(
    type='MapillaryReferDataset',
    data_root=mapillary_data_root,
    data_prefix=dict(img_path='validation/images', seg_map_path='validation/v2.0/labels'),
    text_mode='original',
    test_mode=True,
    pipeline=_base_.semantic_test_pipeline)

train_dataloader = dict(dataset=dict(_delete_=True, **mapillary_train))
val_dataloader = dict(dataset=dict(_delete_=True, **mapillary_val))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='ReferSegMetric', prefix='mapillary_val'),
    dict(type='SemanticIoUMetric', num_classes=124, iou_metrics=['mIoU'], prefix='mapillary_val'),
]
test_evaluator = val_evaluator
