# RefCLEF (ReferItGame on SAIAPR TC-12), UNC splits (train / val / testA / testB / testC;
# use split_file='refclef/refs(berkeley).p' for the Berkeley splits train / val / test):
#   data/saiapr_tc-12/<file_name from instances.json>, data/refclef/{instances.json,refs(unc).p}
_base_ = ['./refcoco.py']

refclef = dict(
    data_root='data/',
    data_prefix=dict(img_path='saiapr_tc-12/'),
    ann_file='refclef/instances.json',
    split_file='refclef/refs(unc).p')
train_dataloader = dict(dataset=refclef)
val_dataloader = dict(dataset=refclef)
test_dataloader = val_dataloader
val_evaluator = dict(prefix='refclef_val')
test_evaluator = val_evaluator
