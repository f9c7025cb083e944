# EVF-SAM Tab. 5, row "mean of the image patch tokens" (figure not in evf_sam.md).
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

model = dict(projector=dict(token='image_mean'))
