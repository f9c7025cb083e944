# EVF-SAM2 as released: BEiT-3-L + SAM-2 Hiera-L (898M parameters), with EVF-SAM's
# RefCOCO-family recipe (configs/evf_sam/evf-beit3l_sam-h_refcoco.py) on SAM-2's input: SAM-2
# frozen, BEiT-3 + projector trained (the maintainers' recipe, EVF-SAM issue #47).
#   tools/dist_train.sh projects/EVF-SAM2/configs/evf-sam2_beit3l_sam2-l_refcoco.py 4
# Pretrained weights for training (download them into checkpoints/):
#   SAM-2 Hiera-L: https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_large.pt
#   BEiT-3-L:      beit3_large_patch16_224.pth (as configs/_base_/models/evf-sam_beit3-l_sam-h.py)
# Inference with a released EVF-SAM2 folder: convert it with
# projects/EVF-SAM2/tools/convert_evf_sam2.py and give it as --weights / load_from; the
# pretrained files above are then not needed (the inferencer does not initialise weights).
_base_ = ['../../../configs/evf_sam/evf-beit3l_sam-h_refcoco.py']
# the project package, with the repository root importable (PYTHONPATH=.; see the project's
# README, projects/EVF-SAM2/README.md)
custom_imports = dict(imports=['projects.EVF-SAM2.evf_sam2'], allow_failed_imports=False)
sam2_checkpoint = 'checkpoints/sam2_hiera_large.pt'

model = dict(
    _delete_=True,
    type='EVFSAM2',
    data_preprocessor=dict(
        type='SAMDataPreprocessor',
        # SAM-2's pixel statistics (ImageNet, 0-255 RGB); images are stretched, never padded
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mm_mean=[0.5, 0.5, 0.5],
        mm_std=[0.5, 0.5, 0.5],
        pad_token_id=1),
    # the official checkpoints are SAM-2.0 (sam2's configs/sam2/, not configs/sam2.1/);
    # the official sam_scale "large" / "tiny" are sam2_hiera_l / sam2_hiera_t
    sam2=dict(config='configs/sam2/sam2_hiera_l.yaml', image_size=1024,
              checkpoint=sam2_checkpoint),
    mm_encoder=_base_.model.mm_encoder,  # BEiT-3-L (pretrained init)
    projector=dict(type='EVFProjector', out_channels=256, token='image_cls'),
    multimask_output=True,  # official since commit 9d00853 ("-multitask" checkpoints)
    trainable=('mm_encoder', 'projector'))

# SAM-2's stretch to sam_size² (the official eval / training resampler: Pillow bilinear)
train_pipeline = [
    dict(type='SAM2Resize', sam_size=t['sam_size'], mm_size=t['mm_size'], backend='pil')
    if t['type'] == 'SAMResize' else t for t in _base_.train_pipeline]
test_pipeline = [
    dict(type='SAM2Resize', sam_size=t['sam_size'], mm_size=t['mm_size'], backend='pil')
    if t['type'] == 'SAMResize' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=train_pipeline) for d in _base_.train_dataloader.dataset.datasets]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=test_pipeline) for d in _base_.test_dataloader.dataset.datasets]))
# only BEiT-3 and the projector train, and all of them reach the loss
find_unused_parameters = False
