# Not a paper table row: E-DIT at the tiny EVF-SAM's CPU budget on SynthRef.
# E-DIT at the tiny budget: the text is carried through the ViT blocks (text queries, text MLP),
# re-projected between blocks as in the released code. Otherwise as l-dit-tiny_synthref.py.
_base_ = ['./l-dit-tiny_synthref.py']

model = dict(injector=dict(mode='end_to_end'))
