# DIT paper Tab. 2, L-DIT with static + dynamic prompts: 20 learnable tokens per block, shared by
# all expressions (static), beside the block's projected text tokens (dynamic).
# configs/dit/README.md, "Static and dynamic prompts (Tab. 2)": this reading and the released
# code's variant (static_prompt_mode='add').
_base_ = ['./l-dit_sam-b_bert-base_refcoco.py']

model = dict(injector=dict(num_static_prompts=20, static_prompt_mode='concat'))
