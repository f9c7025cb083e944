# Tab. 6 row "RES + ADE20K": the multitask config trained on the RefCOCO family (four
# sources, uniform) and ADE20K only, kept at their multitask shares 16 : 4. Tests as the
# multitask config (eight RefCOCO-family splits + ADE20K val in one run).
# Siblings: evf-beit3l_sam-h_res-mapillary.py, evf-beit3l_sam-h_res-ade20k-mapillary.py.
_base_ = ['../evf-beit3l_sam-h_multitask.py']

train_dataloader = dict(
    sampler=dict(source_ratio=[4, 4, 4, 4, 4]),
    dataset=dict(datasets=[*_base_.res_train_datasets, _base_.ade20k_train]))
