# EVF-SAM Tab. 3 row "ViLT, early fusion" (75.3 RefCOCO cIoU) and Tab. 7 row "ViLT +
# SAM-ViT-H" (783M; RefCOCO 73.9 / 75.3 / 70.9, RefCOCO+ 61.1 / 64.4 / 55.2, RefCOCOg 65.1 /
# 66.8 cIoU; paper_tables.md).
# ViLT-B/32 fuses the 384² image and the expression in one Transformer (early fusion, as
# BEiT-3-L does in ../evf-beit3l_sam-h_refcoco.py); its image [CLS] is projected to SAM's prompt
# (the token of the compared BEiT-3 model; 'text_cls' is ViLT's own pooled token). The full
# recipe otherwise. 752.9M parameters (ViLT-B/32 111.0M, its unused pooler left out).
# Weights and tokenizer: the transformers folder of dandelin/vilt-b32-mlm (config.json,
# model.safetensors, vocab.txt, tokenizer_config.json, ...) as checkpoints/vilt-b32-mlm/.
# Without it the model still builds (random weights), e.g. for tools/analysis/count_params.py.
_base_ = ['../evf-beit3l_sam-h_refcoco.py']

vilt_path = 'checkpoints/vilt-b32-mlm'
# ViltConfig arguments of ViLT-B/32: what the model is built with when the folder is absent,
# and checked against its config.json when present. Text is limited to 40 tokens.
vilt_config = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                   num_attention_heads=12, intermediate_size=3072, max_position_embeddings=40,
                   image_size=384, patch_size=32)
model = dict(
    # ViLT's pixel statistics (0-1 RGB) and BERT's [PAD]
    data_preprocessor=dict(mm_mean=[0.5, 0.5, 0.5], mm_std=[0.5, 0.5, 0.5], pad_token_id=0),
    mm_encoder=dict(_delete_=True, type='ViLTEncoder', config=vilt_config, pretrained=vilt_path),
    projector=dict(token='image_cls'))

# ViLT's input side (a square 384² view; ViLT was pre-trained on shorter side 384), its
# tokenizer (BERT uncased) and 40 tokens at most, in training and test (longer expressions are
# truncated, the [SEP] kept)
tokenizer = vilt_path
vilt_pipeline_changes = dict(
    SAMResize=dict(mm_size=vilt_config['image_size']),
    TokenizeText=dict(tokenizer=tokenizer, max_length=vilt_config['max_position_embeddings']))
train_pipeline = [dict(t, **vilt_pipeline_changes.get(t['type'], {}))
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **vilt_pipeline_changes.get(t['type'], {}))
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=train_pipeline) for d in _base_.train_dataloader.dataset.datasets]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=test_pipeline) for d in _base_.test_dataloader.dataset.datasets]))
