# Not a paper table row: tiny twin of l-dit_sam-b_bert-base_refcoco_static-prompts.py (Tab. 2)
# at the tiny L-DIT's budget on SynthRef (CPU); otherwise as l-dit-tiny_synthref.py.
_base_ = ['./l-dit-tiny_synthref.py']

model = dict(injector=dict(num_static_prompts=20, static_prompt_mode='concat'))
