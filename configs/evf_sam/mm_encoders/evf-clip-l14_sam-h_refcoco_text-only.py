# EVF-SAM Tab. 1 / Tab. 3, row "CLIP, text-only": CLIP-Large (OpenAI) text, 123M, 63.4 RefCOCO
# cIoU (paper_tables.md).
# SAM-H prompted by the CLIP ViT-L/14 text embedding of the expression alone: the text-only
# row of ../ablations/evf-beit3l_sam-h_refcoco_text-only.py with CLIP's text tower (123.7M) in
# place of BEiT-3-L. The full recipe otherwise. 765.5M parameters.
# Weights: ./_clip-vit-l14.py.
_base_ = ['../ablations/evf-beit3l_sam-h_refcoco_text-only.py', './_clip-vit-l14.py']

model = dict(
    data_preprocessor=_base_.clip_preprocessing,
    # no vision tower: it would never run
    mm_encoder=dict(_delete_=True, type='CLIPEncoder', config=_base_.clip_config,
                    pretrained=_base_.clip_path, with_vision=False))

# No image view for the encoder; CLIP's tokenizer and text length
tokenizer = _base_.clip_path
clip_pipeline_changes = dict(
    SAMResize=dict(mm_size=None),
    TokenizeText=dict(tokenizer=tokenizer, max_length=_base_.clip_max_length))
train_pipeline = [dict(t, **clip_pipeline_changes.get(t['type'], {}))
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **clip_pipeline_changes.get(t['type'], {}))
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=train_pipeline) for d in _base_.train_dataloader.dataset.datasets]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=test_pipeline) for d in _base_.test_dataloader.dataset.datasets]))
