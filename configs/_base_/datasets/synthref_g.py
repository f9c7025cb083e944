# SynthRef-G: SynthRef's scenes with gRefCOCO's single- / multi- / no-target expressions
# (~60 / 30 / 10 % of the sentences), in ReLA's layout (GReferSegDataset):
#   python tools/dataset_converters/make_synthref_g.py data/synthref_g --num-images 600
#   data/synthref_g/images/train2014/*.jpg, data/synthref_g/grefcoco/{instances.json,
#   grefs(unc).json}, data/synthref_g/tokenizer/ (its XLM-R-style sentencepiece model).
# synthref.py's pipelines (SAM branch 256, BEiT-3 branch 64), loaders and sampling with
# SynthRef-G's own tokenizer; grefcoco.py's splits and metric (keys synthref_g_val/gIoU, ...).
_base_ = ['./synthref.py']
data_root = 'data/synthref_g/'
tokenizer = data_root + 'tokenizer'

train_pipeline = [dict(t, tokenizer=tokenizer) if t.type == 'TokenizeText' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, tokenizer=tokenizer) if t.type == 'TokenizeText' else t
                 for t in _base_.test_pipeline]
synthref_g = dict(
    type='GReferSegDataset',
    data_root=data_root,
    data_prefix=dict(img_path='images/train2014/'),
    ann_file='grefcoco/instances.json',
    split_file='grefcoco/grefs(unc).json')

train_dataloader = dict(dataset=dict(**synthref_g, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(**synthref_g, pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='MultiSplitDataset',
        datasets=[
            dict(**synthref_g, split=split, text_mode='original', pipeline=test_pipeline)
            for split in _base_.test_splits
        ]))
# No TextFollowingMetric (crossIoU): the expressions of an image may name overlapping sets of
# objects or none, so overlapping or empty masks are no failure here.
val_evaluator = dict(_delete_=True, type='GReferSegMetric', prefix='synthref_g_val')
test_evaluator = dict(
    _delete_=True,
    type='mmdet.MultiDatasetsEvaluator',
    metrics=[dict(type='GReferSegMetric') for _ in _base_.test_splits],
    dataset_prefixes=[f'synthref_g_{split}' for split in _base_.test_splits])
