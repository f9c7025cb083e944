# Tab. 6 row "RES + ADE20K + Mapillary": the RefCOCO family (four sources, uniform), ADE20K and
# Mapillary Vistas at 16 : 4 : 4 (each semantic source at ADE20K's multitask share).
# Tests as the multitask config (eight RefCOCO-family splits + ADE20K val in one run).
_base_ = ['../evf-beit3l_sam-h_multitask.py']

train_dataloader = dict(
    sampler=dict(source_ratio=[4, 4, 4, 4, 4, 4]),
    dataset=dict(
        datasets=[*_base_.res_train_datasets, _base_.ade20k_train, _base_.mapillary_train]))
