# EVF-SAM Tab. 1 row "CLIP, text + image", Tab. 3 row "CLIP, late fusion" (67.9 RefCOCO cIoU)
# and Tab. 7 row "CLIP-Large + SAM-ViT-H" (1.08B; RefCOCO 61.0 / 63.4 / 59.9, RefCOCO+ 43.1 /
# 45.9 / 40.6, RefCOCOg 48.9 / 49.6 cIoU; paper_tables.md).
# CLIP ViT-L/14 encodes the 224² image and the expression separately; its image and text
# embeddings are concatenated and projected (late fusion, as
# ../ablations/evf-beit3l_sam-h_refcoco_late-fusion.py does with BEiT-3-L). The full recipe
# otherwise. 1.07B parameters (CLIP-L/14 427.6M in place of BEiT-3-L's 672.7M).
# Weights: ./_clip-vit-l14.py.
_base_ = ['../ablations/evf-beit3l_sam-h_refcoco_late-fusion.py', './_clip-vit-l14.py']

model = dict(
    data_preprocessor=_base_.clip_preprocessing,
    mm_encoder=dict(_delete_=True, type='CLIPEncoder', config=_base_.clip_config,
                    pretrained=_base_.clip_path),
    projector=dict(token='cls_concat'))  # image embedding ++ text embedding

# CLIP's input side, tokenizer and text length
tokenizer = _base_.clip_path
clip_pipeline_changes = dict(
    SAMResize=dict(mm_size=_base_.clip_config.vision_config.image_size),
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
