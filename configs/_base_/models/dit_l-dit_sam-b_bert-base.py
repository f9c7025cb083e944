# L-DIT as in the paper: SAM ViT-B (run at 512², 32 x 32 grid) + BERT-base, text injected into
# every ViT block (docs: ../shared/reference/dit.md). 208.1M parameters (210.5M with SAM's
# 1024² position tables; built at 512 they are resized once at load).
# Pretrained weights (download them into checkpoints/):
#   SAM ViT-B: https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth
#   BERT:      the transformers folder of bert-base-uncased (config.json, model.safetensors,
#              vocab.txt) as checkpoints/bert-base-uncased/ (also the tokenizer folder)
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
bert_path = 'checkpoints/bert-base-uncased'

model = dict(
    type='DITSAM',
    data_preprocessor=dict(
        type='SAMDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_token_id=0),  # BERT [PAD]
    # Run at 512 (32 x 32 grid): SAM's 1024² pos_embed is resized once at load (bicubic, as
    # released) and the global blocks' rel-pos tables linearly (as SAM's get_rel_pos does).
    image_encoder=dict(
        type='SAMImageEncoder', arch='vit_b', img_size=512, frozen=False,
        init_cfg=dict(type='StrictPretrained', checkpoint=sam_checkpoint, layout='sam',
                      prefix='image_encoder.')),
    # output_layer=12 as the paper says; the released code uses layer 1 (see *_released.py).
    text_encoder=dict(
        type='BertTextEncoder', output_layer=12,
        init_cfg=dict(type='StrictPretrained', checkpoint=bert_path, layout='bert',
                      prefix='text_encoder.')),
    injector=dict(
        type='DITTextInjector',
        mode='layer_wise',
        text_attn_mode='all_global',  # the released code: every block global at 512
        mask_text_padding=True,
        proj_init='zeros',
        proj_dropout=0.1),
    prompt_head=dict(
        type='SAMPromptHead',
        multimask_output=False,
        # evaluation threshold sigmoid > 0.35, as a logit: log(0.35 / 0.65)
        mask_threshold=-0.6190392084062235,
        init_cfg=dict(type='StrictPretrained', checkpoint=sam_checkpoint, layout='sam',
                      prefix='prompt_head.'),
        # DIT trains with BCE only
        loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
            eps=1e-3, loss_weight=0.0)),
    mask_text_padding=True,
    # full fine-tuning (paper / layer_wise.yaml); see the frozen-* configs for the others
    trainable=('image_encoder', 'text_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
