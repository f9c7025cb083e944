# DIT setting "frozen BERT" (released layer_wise_freeze.yaml; dit.md §5.3): 98.6M of
# L-DIT_B's 208.1M train (101.0M at 1024²). No paper figure: Tab. 3 (paper_tables.md) has no
# row with BERT frozen and SAM's encoder tuned.
# BERT frozen, SAM and the rest train.
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
