# Not a paper table row: tiny twin of default_sam-b_bert-base_refcoco.py (Tab. 1 "Default": the
# text only as the decoder's sparse prompts, no injection) at the tiny L-DIT's budget on
# SynthRef (CPU); otherwise as l-dit-tiny_synthref.py.
_base_ = ['./l-dit-tiny_synthref.py']

model = dict(
    injector=None,
    trainable=('image_encoder', 'text_encoder', 'text_to_prompt', 'prompt_head'))
