# DIT paper Tab. 2, E-DIT with static + dynamic prompts: 20 learnable tokens (static) enter
# beside T_0 (the text, dynamic) and are carried through the blocks with it.
_base_ = ['./e-dit_sam-b_bert-base_refcoco.py']

model = dict(injector=dict(num_static_prompts=20, static_prompt_mode='concat'))
