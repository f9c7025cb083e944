# L-DIT at the tiny EVF-SAM's budget on SynthRef (CPU): 1400 iterations of 8 images, the same
# schedule, data and metric as configs/evf_sam/evf-tiny_synthref.py; `model=`, the tokenizer
# (BERT) and the expressions per image differ; DIT has no BEiT-3 view (beit_size=None).
_base_ = [
    '../_base_/models/dit_tiny.py',
    '../_base_/datasets/synthref.py',
    '../_base_/schedules/tiny_cpu_1400.py',
]
tokenizer = 'data/synthref/bert_tokenizer'  # SynthRef's BERT vocab.txt ([PAD] = 0)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='EVFResize', sam_size=256, beit_size=None),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='EVFResize', sam_size=256, beit_size=None),
    dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='TokenizeText', tokenizer=tokenizer, max_length=20),
    dict(type='PackReferInputs'),
]
# DIT runs the image encoder once per expression: one expression per image and read keeps the
# tiny EVF-SAM's compute (8 image-encoder passes per iteration; EVF-SAM: 8 images, ~27 texts).
train_dataloader = dict(dataset=dict(max_expressions=1, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
synthref = dict(
    type='ReferSegDataset',
    data_root='data/synthref/',
    data_prefix=dict(img_path='images/'),
    ann_file='synthref/instances.json',
    split_file='synthref/refs(unc).p')
test_dataloader = dict(
    dataset=dict(datasets=[
        dict(**synthref, split=split, text_mode='original', pipeline=test_pipeline)
        for split in ('val', 'testA', 'testB')  # the order of the base's test_evaluator
    ]))

# SAM's IoU head, point / mask prompt layers and BERT's pooler get no gradient (DDP).
find_unused_parameters = True
