# Part segmentation as `[semantic] {part}` prompts, the three part sources of EVF-SAM's
# multitask data (notes Sec. 4.3); folder names are the official EVF-SAM layout under the
# dataset dir:
#   HumanParsing (ATR):  data/humanparsing/{JPEGImages,SegmentationClassAug}/
#   PartImageNet:        data/PartImageNet/annotations/train/train.json, images/train/
#   PASCAL-Part:         data/vlpart/pascal_part/train.json,
#                        data/vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/
# `tools/dataset_converters/make_synthetic_parts.py` writes both layouts.
# Trained alone: PartImageNet : HumanParsing : PASCAL-Part = 2 : 2 : 1, their shares in the
# released multitask mix. Pipelines are refcoco.py's; see objects365.py for the base chain.
_base_ = ['./objects365.py']

humanparsing_train = dict(
    type='HumanParsingDataset',
    data_root='data/humanparsing/',
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)
partimagenet_train = dict(
    type='CocoPartDataset',
    data_root='data/PartImageNet/',
    ann_file='annotations/train/train.json',
    data_prefix=dict(img_path='images/train/'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)
pascal_part_train = dict(
    type='CocoPartDataset',
    data_root='data/vlpart/pascal_part/',
    ann_file='train.json',
    data_prefix=dict(img_path='VOCdevkit/VOC2010/JPEGImages/'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)

train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='RatioSourceSampler',
        batch_size=_base_.batch_size,
        source_ratio=[2, 2, 1]),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=_base_.mixed_meta_keys,
        datasets=[partimagenet_train, humanparsing_train, pascal_part_train]))
