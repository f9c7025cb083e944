# DIT setting "frozen BERT" for E-DIT (as l-dit_..._frozen-bert.py); SAM and the rest train.
# No paper figure: Tab. 3 (paper_tables.md) has no row with BERT frozen and SAM's encoder tuned.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(
    text_encoder=dict(frozen=True),
    trainable=('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'))
