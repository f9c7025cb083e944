# A small L-DIT for CPU runs on SynthRef, at the tiny EVF-SAM's budget (no pretrained weights
# exist for it, so everything trains from scratch): SAM-style ViT 4 x 128 at 256² (16 x 16
# grid), a 2-layer 128-wide BERT on SynthRef's 26-word vocabulary, 64-d prompts.
_base_ = ['./dit_l-dit_sam-b_bert-base.py', './sam_tiny.py']

model = dict(
    image_encoder={{_base_.tiny_sam_image_encoder}},
    text_encoder=dict(
        _delete_=True,
        type='BertTextEncoder',
        config=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=512, vocab_size=26, max_position_embeddings=32),
        output_layer=2),
    prompt_head={{_base_.tiny_sam_prompt_head}})
