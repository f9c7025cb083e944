# Tab. 4: the multimodal encoder frozen; projector, prompt encoder and mask decoder train.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('projector', 'prompt_head'))
