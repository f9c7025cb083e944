"""DIT configs build, and tools/analysis/count_params.py gives dit.md §5.3's counts (meta
device, no weights read)."""
import pytest
from mmengine.config import Config

from tools.analysis.count_params import count

BERT_POOLER = 768 * 768 + 768  # never reaches the output: always frozen
# The image encoder is built at 512 (SAM's 1024² tables resized once at load): against dit.md
# §5.3's counts (built at 1024) pos_embed has 32² instead of 64² rows and the 4 global blocks'
# rel-pos tables 63 instead of 127.
AT_512_B = (64 * 64 - 32 * 32) * 768 + 4 * 2 * (127 - 63) * 64  # 2,392,064
AT_512_H = (64 * 64 - 32 * 32) * 1280 + 4 * 2 * (127 - 63) * 80  # 3,973,120


@pytest.mark.parametrize('config, total, trainable', [
    # full fine-tune: 210.5M (ViT-B) / 804.2M (ViT-H) at 1024, all trained but BERT's pooler
    ('l-dit_sam-b_bert-base_refcoco.py', 210_501_680 - AT_512_B,
     210_501_680 - AT_512_B - BERT_POOLER),
    ('e-dit_sam-b_bert-base_refcoco.py', 210_501_680 - AT_512_B,
     210_501_680 - AT_512_B - BERT_POOLER),
    ('l-dit_sam-h_bert-base_refcoco.py', 804_223_792 - AT_512_H,
     804_223_792 - AT_512_H - BERT_POOLER),
    # frozen BERT: 101.0M; frozen SAM encoder: 120.8M - pooler; both frozen: 11.35M
    ('l-dit_sam-b_bert-base_refcoco_frozen-bert.py', 210_501_680 - AT_512_B,
     101_019_440 - AT_512_B),
    ('l-dit_sam-b_bert-base_refcoco_frozen-sam.py', 210_501_680 - AT_512_B,
     120_830_768 - BERT_POOLER),
    ('l-dit_sam-b_bert-base_refcoco_frozen-sam-bert.py', 210_501_680 - AT_512_B, 11_348_528),
])
def test_parameter_counts(repo_root, config, total, trainable):
    result = count(str(repo_root / 'configs/dit' / config))
    assert result['total'] == total and result['trainable'] == trainable
    assert result['modules']['text_encoder'][0] == 109_482_240  # BERT-base
    assert result['modules']['text_to_prompt'][0] == 768 * 256 + 256  # W_o
    sam_b = 89_670_912 - AT_512_B
    if 'sam-b' in config:
        assert result['modules']['image_encoder'][0] == sam_b
        assert result['modules']['injector'][0] == 12 * (768 * 768 + 768)  # 7.09M


def test_released_variant_switches(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/dit/l-dit_sam-b_bert-base_refcoco_released.py'))
    assert cfg.model.text_encoder.output_layer == 1
    assert cfg.model.injector.mask_text_padding is False and cfg.model.mask_text_padding is False
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.15
    assert any(h.type == 'EMAHook' for h in cfg.custom_hooks)
    # BERT layers 2-12 never reach layer 1's output: frozen
    result = count(str(repo_root / 'configs/dit/l-dit_sam-b_bert-base_refcoco_released.py'))
    assert result['total'] - result['trainable'] == BERT_POOLER + 11 * 7_087_872


def test_paper_recipe(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/dit/l-dit_sam-b_bert-base_refcoco.py'))
    # one size: the encoder's; the preprocessor's padding and the head's PE grid derive from it
    assert cfg.model.image_encoder.img_size == 512
    assert 'pad_size' not in cfg.model.data_preprocessor
    assert 'image_embedding_size' not in cfg.model.prompt_head
    assert [t.sam_size for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'SAMResize'] == [512]
    kinds = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'TextAwareRandomFlip' in kinds and 'RandomApply' in kinds
    assert cfg.train_cfg.max_epochs == 40 and cfg.param_scheduler[1].milestones == [30, 35]
