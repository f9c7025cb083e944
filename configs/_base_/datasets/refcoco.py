# RefCOCO (UNC splits: train / val / testA / testB) in mmdet's layout:
#   data/coco/train2014/COCO_train2014_*.jpg
#   data/coco/refcoco/instances.json, data/coco/refcoco/refs(unc).p
# Evaluation follows EVF-SAM: every sentence of every ref (text_mode='original'), masks at the
# original image size. Training draws 3 expressions per image afresh at every read.
data_root = 'data/coco/'
tokenizer = 'checkpoints/xlmr'  # folder with XLM-R's sentencepiece.bpe.model
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    # mmdet's transforms carry their scope: in scope mmevf a bare 'LoadAnnotations' is mmcv's.
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='SAMResize', sam_size=1024, mm_size=224),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=128),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='SAMResize', sam_size=1024, mm_size=224),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer),
    dict(type='PackReferInputs'),
]

refcoco = dict(
    type='ReferSegDataset',
    data_root=data_root,
    data_prefix=dict(img_path='train2014/'),
    ann_file='refcoco/instances.json',
    split_file='refcoco/refs(unc).p')

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **refcoco,
        split='train',
        text_mode='random',
        num_sentences=None,
        max_expressions=3,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**refcoco, split='val', text_mode='original', pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='ReferSegMetric', prefix='refcoco_val')
test_evaluator = val_evaluator
