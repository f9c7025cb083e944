# RefCLEF (ReferItGame on SAIAPR TC-12), UNC splits (train / val / testA / testB / testC;
# use split_file='refclef/refs(berkeley).p' for the Berkeley splits train / val / test):
#   data/saiapr_tc-12/<file_name from instances.json>, data/refclef/{instances.json,refs(unc).p}
_base_ = ['./refcoco.py']

data_root = 'data/'
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='saiapr_tc-12/'),
        ann_file='refclef/instances.json',
        split_file='refclef/refs(unc).p'))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(img_path='saiapr_tc-12/'),
        ann_file='refclef/instances.json',
        split_file='refclef/refs(unc).p'))
test_dataloader = val_dataloader
val_evaluator = dict(prefix='refclef_val')
test_evaluator = val_evaluator
