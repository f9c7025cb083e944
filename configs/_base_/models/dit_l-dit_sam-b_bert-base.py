# L-DIT as in the paper: SAM ViT-B (run at 512², 32 x 32 grid) + BERT-base, text injected into
# every ViT block (docs: ../shared/reference/dit.md). 210.5M parameters.
# Pretrained weights (download them into checkpoints/):
#   SAM ViT-B: https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth
#   BERT:      the transformers folder of bert-base-uncased (config.json, model.safetensors,
#              vocab.txt) as checkpoints/bert-base-uncased/ (also the tokenizer folder)
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
bert_path = 'checkpoints/bert-base-uncased'

model = dict(
    type='DITSam',
    data_preprocessor=dict(
        type='EVFDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size=512,
        pad_token_id=0),  # BERT [PAD]
    # Built at SAM's 1024 so the official pos_embed / rel-pos tables load strictly; the
    # injector resizes pos_embed to the 32 x 32 grid of the 512 input (bicubic, as released).
    image_encoder=dict(
        type='SAMImageEncoder', arch='vit_b', img_size=1024, frozen=False,
        pretrained=sam_checkpoint),
    # output_layer=12 as the paper says; the released code uses layer 1 (see *_released.py).
    text_encoder=dict(type='BertTextEncoder', pretrained=bert_path, output_layer=12),
    injector=dict(
        type='DITTextInjector',
        mode='layer_wise',
        text_attn_mode='all_global',  # the released code: every block global at 512
        mask_text_padding=True,
        proj_init='zeros',
        proj_dropout=0.1),
    prompt_head=dict(
        type='SAMPromptHead',
        image_embedding_size=32,
        input_image_size=512,
        multimask_output=False,
        # evaluation threshold sigmoid > 0.35, as a logit: log(0.35 / 0.65)
        mask_threshold=-0.6190392084062235,
        pretrained=sam_checkpoint,
        # DIT trains with BCE only
        loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=True,
            eps=1e-3, loss_weight=0.0)),
    mask_text_padding=True,
    # full fine-tuning (paper / layer_wise.yaml); see the frozen-* configs for the others
    trainable=('image_encoder', 'text_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
