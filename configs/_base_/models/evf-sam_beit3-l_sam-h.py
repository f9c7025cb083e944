# EVF-SAM as in the paper: BEiT-3-Large multimodal encoder + SAM ViT-H, 1.32B parameters.
# Pretrained weights (download them into checkpoints/):
#   SAM ViT-H: https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth
#   BEiT-3-L:  beit3_large_patch16_224.pth from microsoft/unilm (beit3); its
#              sentencepiece model beit3.spm goes to checkpoints/xlmr/sentencepiece.bpe.model
#              (the tokenizer folder of configs/_base_/datasets/refcoco.py)
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
beit3_checkpoint = 'checkpoints/beit3_large_patch16_224.pth'

model = dict(
    type='EVFSAM',
    data_preprocessor=dict(
        type='SAMDataPreprocessor',
        # SAM's pixel statistics (0-255 RGB); padding to the image encoder's 1024 x 1024
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        # BEiT-3 normalisation (0-1 RGB)
        mm_mean=[0.5, 0.5, 0.5],
        mm_std=[0.5, 0.5, 0.5],
        pad_token_id=1),  # XLM-R <pad>
    image_encoder=dict(
        type='SAMImageEncoder', arch='vit_h', img_size=1024, frozen=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=sam_checkpoint, layout='sam',
                      prefix='image_encoder.')),
    mm_encoder=dict(
        type='BEiT3MultiwayEncoder', arch='large', img_size=224, vocab_size=64010,
        init_cfg=dict(type='StrictPretrained', checkpoint=beit3_checkpoint, layout='beit3',
                      prefix='mm_encoder.')),
    projector=dict(type='EVFProjector', out_channels=256, token='image_cls'),
    prompt_head=dict(
        type='SAMPromptHead',
        multimask_output=False,
        init_cfg=dict(type='StrictPretrained', checkpoint=sam_checkpoint, layout='sam',
                      prefix='prompt_head.'),
        loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
            eps=1e-3, loss_weight=1.0)),
    mm_encoder_image=True,
    # SAM's image encoder stays frozen; everything else trains (paper, Sec. 4.1).
    trainable=('mm_encoder', 'projector', 'prompt_head'))
