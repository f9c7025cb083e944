# CLIP ViT-L/14 (openai/clip-vit-large-patch14, 427.6M parameters) as EVF-SAM's prompt encoder:
# its architecture, preprocessing and folder, shared by the CLIP configs here (not a config to
# run). Weights and tokenizer: the transformers folder of openai/clip-vit-large-patch14
# (config.json, model.safetensors, vocab.json, merges.txt, tokenizer_config.json, ...) as
# checkpoints/clip-vit-large-patch14/. Without it the models still build (random weights), e.g.
# for tools/analysis/count_params.py; training / init_weights fail, naming the folder.
clip_path = 'checkpoints/clip-vit-large-patch14'  # also the tokenizer folder
# CLIPConfig arguments of ViT-L/14: what the model is built with when the folder is absent, and
# checked against its config.json when present.
clip_config = dict(
    projection_dim=768,
    text_config=dict(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                     num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77),
    vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                       num_attention_heads=16, image_size=224, patch_size=14))
# SAMDataPreprocessor arguments: CLIP's pixel statistics (0-1 RGB) for the multimodal view,
# and its padding token (<|endoftext|>, which CLIP's tokenizer pads with)
clip_preprocessing = dict(
    mm_mean=[0.48145466, 0.4578275, 0.40821073],
    mm_std=[0.26862954, 0.26130258, 0.27577711],
    pad_token_id=49407)
clip_max_length = 77  # the text position table
