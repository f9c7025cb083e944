# DIT paper Tab. 1 "Default": SAM ViT-B with the text only as the mask decoder's sparse prompts
# (BERT-base -> W_o -> 256-d tokens, padding left out); no injection, SAM's encoder runs its own
# (windowed) forward once per image. Full fine-tune, L-DIT_B's recipe otherwise.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(
    injector=None,
    trainable=('image_encoder', 'text_encoder', 'text_to_prompt', 'prompt_head'))
