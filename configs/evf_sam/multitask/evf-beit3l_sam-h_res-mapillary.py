# Tab. 6 row "RES + Mapillary": the multitask config trained on the RefCOCO family (four
# sources, uniform) and Mapillary Vistas only, Mapillary at ADE20K's multitask share (16 : 4).
# Tests as the multitask config (eight RefCOCO-family splits + ADE20K val in one run).
_base_ = ['../evf-beit3l_sam-h_multitask.py']

train_dataloader = dict(
    sampler=dict(source_ratio=[4, 4, 4, 4, 4]),
    dataset=dict(datasets=[*_base_.res_train_datasets, _base_.mapillary_train]))
