"""Every row of the DIT paper's Tab. 1-5 has a config that builds and that count_params.py counts
(meta device, no weights read); the README lists them; the pieces they add (the "Default"
baseline, the deeper decoders' partial SAM loading, Gaussian blur, DIT's metric list) work."""
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmevf.registry import MODELS, TRANSFORMS
from tools.analysis.count_params import count

BERT_POOLER = 768 * 768 + 768  # never reaches the output: always frozen
L_DIT_B = 208_109_616  # at 512², see test_dit_configs.py
L_DIT_H = 800_250_672
SAM_B_ENCODER = 87_278_848  # at 512²
INJECTOR_B = 12 * (768 * 768 + 768)
DECODER_LAYER = 1_579_520  # one TwoWayAttentionBlock(256, mlp 2048, 8 heads)
DEFAULT_B = L_DIT_B - INJECTOR_B
MHA_LN = 4 * (768 * 768 + 768) + 2 * 768
FFN_LN = 2 * 768 * 3072 + 3072 + 768 + 2 * 768
FROZEN_SAM = 120_830_768 - BERT_POOLER  # L-DIT_B's frozen-SAM count (dit.md §5.3)

# paper table row -> config, (total, trainable)
ROWS = {
    'Tab. 1 Default': ('default_sam-b_bert-base_refcoco.py', DEFAULT_B, DEFAULT_B - BERT_POOLER),
    'Tab. 1 Default*': ('default_sam-b_bert-base_refcoco_frozen-sam.py', DEFAULT_B,
                        DEFAULT_B - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 Add 2 layers': ('default-add2_sam-b_bert-base_refcoco.py',
                            DEFAULT_B + 2 * DECODER_LAYER,
                            DEFAULT_B + 2 * DECODER_LAYER - BERT_POOLER),
    'Tab. 1 Add 2 layers*': ('default-add2_sam-b_bert-base_refcoco_frozen-sam.py',
                             DEFAULT_B + 2 * DECODER_LAYER,
                             DEFAULT_B + 2 * DECODER_LAYER - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 Add 4 layers': ('default-add4_sam-b_bert-base_refcoco.py',
                            DEFAULT_B + 4 * DECODER_LAYER,
                            DEFAULT_B + 4 * DECODER_LAYER - BERT_POOLER),
    'Tab. 1 Add 4 layers*': ('default-add4_sam-b_bert-base_refcoco_frozen-sam.py',
                             DEFAULT_B + 4 * DECODER_LAYER,
                             DEFAULT_B + 4 * DECODER_LAYER - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 E-DIT': ('e-dit_sam-b_bert-base_refcoco.py', L_DIT_B, L_DIT_B - BERT_POOLER),
    'Tab. 1 E-DIT*': ('e-dit_sam-b_bert-base_refcoco_frozen-sam.py', L_DIT_B, FROZEN_SAM),
    'Tab. 1 L-DIT': ('l-dit_sam-b_bert-base_refcoco.py', L_DIT_B, L_DIT_B - BERT_POOLER),
    'Tab. 1 L-DIT*': ('l-dit_sam-b_bert-base_refcoco_frozen-sam.py', L_DIT_B, FROZEN_SAM),
    'Tab. 2 E-DIT static + dynamic': ('e-dit_sam-b_bert-base_refcoco_static-prompts.py',
                                      L_DIT_B + 20 * 768, L_DIT_B + 20 * 768 - BERT_POOLER),
    'Tab. 2 L-DIT static + dynamic': ('l-dit_sam-b_bert-base_refcoco_static-prompts.py',
                                      L_DIT_B + 12 * 20 * 768,
                                      L_DIT_B + 12 * 20 * 768 - BERT_POOLER),
    'Tab. 3 E-DIT frozen BERT': ('e-dit_sam-b_bert-base_refcoco_frozen-bert.py', L_DIT_B,
                                 98_627_376),
    'Tab. 3 L-DIT frozen BERT': ('l-dit_sam-b_bert-base_refcoco_frozen-bert.py', L_DIT_B,
                                 98_627_376),
    'E-DIT frozen SAM + BERT': ('e-dit_sam-b_bert-base_refcoco_frozen-sam-bert.py', L_DIT_B,
                                11_348_528),
    'Tab. 4 cross attention': ('l-dit_sam-b_bert-base_refcoco_cross-attn.py',
                               DEFAULT_B + 12 * MHA_LN, DEFAULT_B + 12 * MHA_LN - BERT_POOLER),
    'Tab. 4 cross attention + FFN': ('l-dit_sam-b_bert-base_refcoco_cross-attn-ffn.py',
                                     DEFAULT_B + 12 * (MHA_LN + FFN_LN),
                                     DEFAULT_B + 12 * (MHA_LN + FFN_LN) - BERT_POOLER),
    'Tab. 5 L-DIT_B RefCOCO+': ('l-dit_sam-b_bert-base_refcoco+.py', L_DIT_B,
                                L_DIT_B - BERT_POOLER),
    'Tab. 5 L-DIT_B RefCOCOg': ('l-dit_sam-b_bert-base_refcocog.py', L_DIT_B,
                                L_DIT_B - BERT_POOLER),
    'Tab. 5 L-DIT_H RefCOCO+': ('l-dit_sam-h_bert-base_refcoco+.py', L_DIT_H,
                                L_DIT_H - BERT_POOLER),
    'Tab. 5 L-DIT_H RefCOCOg': ('l-dit_sam-h_bert-base_refcocog.py', L_DIT_H,
                                L_DIT_H - BERT_POOLER),
}
TINY = ['default-tiny_synthref.py', 'default-add2-tiny_synthref.py',
        'default-add4-tiny_synthref.py', 'l-dit-tiny_synthref_cross-attn.py',
        'l-dit-tiny_synthref_cross-attn-ffn.py', 'l-dit-tiny_synthref_static-prompts.py',
        'e-dit-tiny_synthref_static-prompts.py']


@pytest.mark.parametrize('row', list(ROWS))
def test_row_config_counts(repo_root, row):
    config, total, trainable = ROWS[row]
    result = count(str(repo_root / 'configs/dit' / config))
    assert (result['total'], result['trainable']) == (total, trainable), row


@pytest.mark.parametrize('config', TINY)
def test_tiny_twins_count(repo_root, config):
    result = count(str(repo_root / 'configs/dit' / config))
    assert 0 < result['trainable'] <= result['total'] < 3_000_000


def test_readme_lists_every_dit_config(repo_root):
    readme = (repo_root / 'README.md').read_text()
    section = readme[readme.index('## DIT in mmevf'):]
    listed = set(re.findall(r'`([\w+.-]+\.py)`', section))
    configs = {p.name for p in (repo_root / 'configs/dit').glob('*.py')}
    assert configs <= listed, sorted(configs - listed)
    for row in ROWS:
        if row.startswith('Tab.'):
            assert row.split()[1] in section


def test_default_baseline_encodes_each_image_once(repo_root):
    """Tab. 1 "Default": no injector; the embedding is SAM's own, once per image, and may be
    cached (it depends on the image alone)."""
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(repo_root / 'configs/dit/default-tiny_synthref.py'))
    model = MODELS.build(cfg.model).eval()
    assert model.injector is None and model.image_embedding_cacheable
    torch.manual_seed(0)
    inputs = dict(img=torch.randn(2, 3, 256, 256), text_ids=torch.randint(1, 26, (3, 6)),
                  text_padding_mask=torch.zeros(3, 6, dtype=torch.bool),
                  expr_image_index=torch.tensor([0, 0, 1]))
    with torch.no_grad():
        embeddings, prompts, _ = model.encode(inputs)
        ref = model.image_encoder(inputs['img'])
    torch.testing.assert_close(embeddings, ref[[0, 0, 1]])
    assert prompts.shape == (3, 6, 64)


def test_added_decoder_layers_load_sam_and_start_fresh(repo_root, tmp_path):
    """Add 2 decoder layers: SAM's decoder loads strictly into layers 0-1 (and the rest); the
    added layers 2-3 are the only keys the file need not provide."""
    init_default_scope('mmevf')
    sam_head = MODELS.build(dict(type='SAMPromptHead'))
    state = {k: v for k, v in sam_head.state_dict().items()}
    checkpoint = tmp_path / 'sam_head.pth'
    torch.save(state, checkpoint)  # SAM's own keys: prompt_encoder.*, mask_decoder.*
    cfg = Config.fromfile(str(repo_root / 'configs/dit/default-add2_sam-b_bert-base_refcoco.py'))
    head_cfg = cfg.model.prompt_head
    head_cfg.init_cfg.checkpoint = str(checkpoint)
    head = MODELS.build(head_cfg)
    head.init_weights()
    loaded = head.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    added = [k for k in loaded if k.startswith('mask_decoder.transformer.layers.')
             and int(k.split('.')[3]) >= 2]
    assert added and not any(k in state for k in added)
    head_cfg.init_cfg.ignore_missing = ()
    with pytest.raises(Exception, match='layers.2'):
        MODELS.build(head_cfg).init_weights()


@pytest.mark.parametrize('base', ['refcoco_dit.py', 'refcoco+_dit.py', 'refcocog_dit.py'])
def test_gaussian_blur_and_metrics_in_dit_datasets(repo_root, base):
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/datasets' / base))
    blur = [t for t in cfg.train_dataloader.dataset.pipeline if 'GaussianBlur' in t.type]
    assert len(blur) == 1 and blur[0].prob == 0.5 and blur[0].type == 'mmpretrain.GaussianBlur'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert {'cIoU', 'mIoU', 'P@0.5', 'P@0.7', 'P@0.9'} <= set(evaluator.metric)
    split_file = cfg.train_dataloader.dataset.split_file
    assert split_file.startswith(base.replace('_dit.py', '/'))


def test_gaussian_blur_blurs_the_image_only(repo_root):
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/datasets/refcoco_dit.py'))
    blur_cfg = next(t for t in cfg.train_pipeline if 'GaussianBlur' in t.type)
    init_default_scope('mmevf')
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    always = TRANSFORMS.build(dict(blur_cfg, prob=1.0))
    never = TRANSFORMS.build(dict(blur_cfg, prob=0.0))
    mask = np.ones((1, 64, 48), dtype=np.uint8)
    out = always(dict(img=img.copy(), gt_masks=mask.copy()))
    assert out['img'].shape == img.shape and out['img'].dtype == np.uint8
    # blurring lowers the high-frequency energy of random noise; the mask is untouched
    assert np.abs(np.diff(out['img'].astype(float), axis=1)).mean() < \
        np.abs(np.diff(img.astype(float), axis=1)).mean()
    assert (out['gt_masks'] == mask).all()
    assert (never(dict(img=img.copy()))['img'] == img).all()
    # random with p = 0.5: over 200 draws both outcomes occur
    half = TRANSFORMS.build(blur_cfg)
    changed = [not (half(dict(img=img.copy()))['img'] == img).all() for _ in range(200)]
    assert 60 < sum(changed) < 140
