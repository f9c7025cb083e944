# Not a paper table row: tiny twin of e-dit_sam-b_bert-base_refcoco_static-prompts.py (Tab. 2)
# at the tiny L-DIT's budget on SynthRef (CPU); otherwise as e-dit-tiny_synthref.py.
_base_ = ['./e-dit-tiny_synthref.py']

model = dict(injector=dict(num_static_prompts=20, static_prompt_mode='concat'))
