# A small EVF-SAM2 for CPU runs on SynthRef: the tiny EVF-SAM's BEiT-3 (4 layers at 64²) and
# SAM-2 Hiera-T at 256² (16 x 16 embedding; SAM-2's prompts stay 256-d). SAM-2 is frozen with
# the weights it is given (sam2.checkpoint, e.g. sam2_hiera_tiny.pt; random without one, the
# tests' case); BEiT-3 and the projector train, as the maintainers train EVF-SAM2.
#   PYTHONPATH=. python tools/train.py \
#       projects/EVF-SAM2/configs/evf-sam2-tiny_synthref.py
_base_ = ['../../../configs/evf_sam/evf-tiny_synthref.py']
custom_imports = dict(imports=['projects.EVF-SAM2.evf_sam2'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='EVFSAM2',
    data_preprocessor=dict(
        type='SAMDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mm_mean=[0.5, 0.5, 0.5],
        mm_std=[0.5, 0.5, 0.5],
        pad_token_id=1),
    sam2=dict(config='configs/sam2/sam2_hiera_t.yaml', image_size=256, checkpoint=None),
    mm_encoder=_base_.model.mm_encoder,
    projector=dict(_base_.model.projector, out_channels=256),
    multimask_output=True,
    trainable=('mm_encoder', 'projector'))

train_pipeline = [
    dict(type='SAM2Resize', sam_size=t['sam_size'], mm_size=t['mm_size'], backend='pil')
    if t['type'] == 'SAMResize' else t for t in _base_.train_pipeline]
test_pipeline = [
    dict(type='SAM2Resize', sam_size=t['sam_size'], mm_size=t['mm_size'], backend='pil')
    if t['type'] == 'SAMResize' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=test_pipeline) for d in _base_.test_dataloader.dataset.datasets]))
find_unused_parameters = False
