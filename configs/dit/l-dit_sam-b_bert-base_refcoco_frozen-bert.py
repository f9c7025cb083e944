# Paper setting "frozen BERT" (layer_wise_freeze.yaml): BERT frozen, SAM and the rest train.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
