# Tab. 5: the mean of the image patch tokens prompts SAM.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='image_mean'))
