# L-DIT_H: SAM ViT-H (1280 wide, 32 blocks) + BERT-base, 804.2M parameters. BERT's 768-d
# features reach the 1280-d blocks through W_0 (`pre_proj`); activation checkpointing per block.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'

model = dict(
    image_encoder=dict(arch='vit_h', pretrained=sam_checkpoint),
    injector=dict(with_cp=True),
    prompt_head=dict(pretrained=sam_checkpoint))
