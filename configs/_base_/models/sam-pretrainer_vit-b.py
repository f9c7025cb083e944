# SAM trained as SAM is, with point / box prompts taken from ground-truth masks (SAMPretrainer):
# for architectures that have no released weights. The tiny SAM of the embedded default
# (configs/sam/sam-tiny_synthref.py) replaces the ViT-B parts below.
model = dict(
    type='SAMPretrainer',
    # its defaults are SAM's: 0-255 RGB statistics, padding to the encoder's 1024 x 1024
    data_preprocessor=dict(type='SAMDataPreprocessor'),
    image_encoder=dict(type='SAMImageEncoder', arch='vit_b', img_size=1024, frozen=False),
    prompt_head=dict(type='SAMPromptHead', multimask_output=False),
    box_prob=0.5)
