# Objects365 as referring segmentation (ObjectsInstanceDataset): bare category names of the
# instances whose category occurs once in the image, up to 3 drawn per read (EVF-SAM, Sec. 4.3
# of the notes). Folder names are the official EVF-SAM layout under the dataset dir:
#   data/Object365/raw/Objects365_v1/2019-08-02/o365_res_instances.json   (masks, RLE)
#   data/Object365/raw/Objects365_v1/2019-08-02/train/*.jpg
# The official mask json is not public; `tools/dataset_converters/filter_objects365.py SRC DST`
# applies the single-instance rule to a json of your own.
#
# The multitask dataset bases stack in one line (refer_seg_union <- objects365 <- parts <-
# ade20k_semantic) because mmengine refuses a key defined in two sibling bases (each would
# bring refcoco.py's data_root / pipelines); every base keeps its sources as variables
# (`res_train_datasets`, `objects365_train`, ...) and trains on its own sources alone.
# Pipelines are refcoco.py's (SAMResize 1024 / BEiT 224, TokenizeText with XLM-R,
# PackReferInputs); validation / tests stay RefCOCO val / the eight RefCOCO-family splits.
_base_ = ['./refer_seg_union.py']

# the RefCOCO family's four train sources of refer_seg_union.py, for the compositions
res_train_datasets = _base_.train_dataloader.dataset.datasets
# metainfo keys that differ between the sources (classes of the json / of ADE20K, mmseg's
# palette, label_map, reduce_zero_label): ignored when concatenating them
mixed_meta_keys = ['classes', 'palette', 'label_map', 'reduce_zero_label']

objects365_train = dict(
    type='ObjectsInstanceDataset',
    data_root='data/Object365/raw/Objects365_v1/2019-08-02/',
    ann_file='o365_res_instances.json',
    data_prefix=dict(img_path='train/'),
    text_mode='random',
    max_expressions=3,
    pipeline=_base_.train_pipeline)

train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, **objects365_train))
