# The tiny EVF-SAM with SAM's image encoder frozen, as the paper trains EVF-SAM: only the
# multimodal encoder, the projector and the prompt head train. The encoder keeps the weights it
# is given: a tiny SAM trained by configs/sam/sam-tiny_synthref.py (converted by
# tools/model_converters/mmevf2sam.py) through image_encoder.init_cfg, e.g.
#   init_cfg=dict(type='StrictPretrained', checkpoint='sam_tiny.pth', layout='sam',
#                 prefix='image_encoder.')
# or, without one, its random initialisation (the tests' case). A frozen encoder is what an
# embedding cache needs: evf-tiny-frozen-sam_synthref_cached.py.
_base_ = ['./evf-tiny_synthref.py']

model = dict(
    image_encoder=dict(frozen=True),
    trainable=('mm_encoder', 'projector', 'prompt_head'))
