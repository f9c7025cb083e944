# EVF-SAM Tab. 4, row 1: multimodal encoder frozen, prompt encoder frozen, mask decoder
# trained; 21.2 cIoU. The projector trains: it is new (randomly initialised, no pretrained
# weights exist for it) and evf_sam.md §2.2 / §5 has it trained in every EVF-SAM model; the
# table's switches name the pretrained parts only. `trainable` takes parameter-name prefixes:
# 'prompt_head.mask_decoder' is SAM's mask decoder without its prompt encoder.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(trainable=('projector', 'prompt_head.mask_decoder'))
