"""Every row of the DIT paper's Tab. 1-5 has a config that builds and that count_params.py counts
(meta device, no weights read); configs/dit/README.md's table maps each row to the config that
models it, with its parameter counts; the CPU-sized twins model their paper rows; the pieces they
add (the "Default" baseline, the deeper decoders' partial SAM loading, Gaussian blur, DIT's
metric list) work."""
import re
from pathlib import Path
from typing import List, Tuple

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
SAM_HEAD = 6_220 + 4_058_340  # SAM's prompt encoder + mask decoder (2 layers)
TEXT_TO_PROMPT = 768 * 256 + 256  # W_o
FROZEN_SAM_BERT = INJECTOR_B + TEXT_TO_PROMPT + SAM_HEAD  # only DIT's own parts and the decoder

# paper table row -> config, (total, trainable)
ROWS = {
    'Tab. 1 Default': ('default_sam-b_bert-base_refcoco.py', DEFAULT_B, DEFAULT_B - BERT_POOLER),
    'Tab. 1 Default*': ('default_sam-b_bert-base_refcoco_frozen-sam.py', DEFAULT_B,
                        DEFAULT_B - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 Add 2 dec layers': ('default-add2_sam-b_bert-base_refcoco.py',
                                DEFAULT_B + 2 * DECODER_LAYER,
                                DEFAULT_B + 2 * DECODER_LAYER - BERT_POOLER),
    'Tab. 1 Add 2 dec layers*': ('default-add2_sam-b_bert-base_refcoco_frozen-sam.py',
                                 DEFAULT_B + 2 * DECODER_LAYER,
                                 DEFAULT_B + 2 * DECODER_LAYER - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 Add 4 dec layers': ('default-add4_sam-b_bert-base_refcoco.py',
                                DEFAULT_B + 4 * DECODER_LAYER,
                                DEFAULT_B + 4 * DECODER_LAYER - BERT_POOLER),
    'Tab. 1 Add 4 dec layers*': ('default-add4_sam-b_bert-base_refcoco_frozen-sam.py',
                                 DEFAULT_B + 4 * DECODER_LAYER,
                                 DEFAULT_B + 4 * DECODER_LAYER - SAM_B_ENCODER - BERT_POOLER),
    'Tab. 1 E-DIT': ('e-dit_sam-b_bert-base_refcoco.py', L_DIT_B, L_DIT_B - BERT_POOLER),
    'Tab. 1 E-DIT*': ('e-dit_sam-b_bert-base_refcoco_frozen-sam.py', L_DIT_B, FROZEN_SAM),
    'Tab. 1 L-DIT': ('l-dit_sam-b_bert-base_refcoco.py', L_DIT_B, L_DIT_B - BERT_POOLER),
    'Tab. 1 L-DIT*': ('l-dit_sam-b_bert-base_refcoco_frozen-sam.py', L_DIT_B, FROZEN_SAM),
    'Tab. 2 E-DIT dynamic + static': ('e-dit_sam-b_bert-base_refcoco_static-prompts.py',
                                      L_DIT_B + 20 * 768, L_DIT_B + 20 * 768 - BERT_POOLER),
    'Tab. 2 L-DIT dynamic + static': ('l-dit_sam-b_bert-base_refcoco_static-prompts.py',
                                      L_DIT_B + 12 * 20 * 768,
                                      L_DIT_B + 12 * 20 * 768 - BERT_POOLER),
    'Tab. 3 E-DIT ✓ ✓': ('e-dit_sam-b_bert-base_refcoco_frozen-sam-bert.py', L_DIT_B,
                         FROZEN_SAM_BERT),
    'Tab. 3 L-DIT ✓ ✓': ('l-dit_sam-b_bert-base_refcoco_frozen-sam-bert.py', L_DIT_B,
                         FROZEN_SAM_BERT),
    # not table rows: BERT frozen, SAM tuned (Tab. 3 has no such row)
    'E-DIT frozen BERT': ('e-dit_sam-b_bert-base_refcoco_frozen-bert.py', L_DIT_B, 98_627_376),
    'L-DIT frozen BERT': ('l-dit_sam-b_bert-base_refcoco_frozen-bert.py', L_DIT_B, 98_627_376),
    'Tab. 4 CrossAtt': ('l-dit_sam-b_bert-base_refcoco_cross-attn.py',
                        DEFAULT_B + 12 * MHA_LN, DEFAULT_B + 12 * MHA_LN - BERT_POOLER),
    'Tab. 4 CrossAtt + FFN': ('l-dit_sam-b_bert-base_refcoco_cross-attn-ffn.py',
                              DEFAULT_B + 12 * (MHA_LN + FFN_LN),
                              DEFAULT_B + 12 * (MHA_LN + FFN_LN) - BERT_POOLER),
    'Tab. 5 L-DIT_B RefCOCO+': ('l-dit_sam-b_bert-base_refcoco+.py', L_DIT_B,
                                L_DIT_B - BERT_POOLER),
    'Tab. 5 L-DIT_B RefCOCOg': ('l-dit_sam-b_bert-base_refcocog.py', L_DIT_B,
                                L_DIT_B - BERT_POOLER),
    'Tab. 5 L-DIT_H RefCOCO': ('l-dit_sam-h_bert-base_refcoco.py', L_DIT_H,
                               L_DIT_H - BERT_POOLER),
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


DIT_DIR = Path(__file__).resolve().parents[2] / 'configs/dit'
MODES = {'E': 'end_to_end', 'L': 'layer_wise'}


def readme_table(header: str) -> List[List[str]]:
    """The cells of each row of the configs/dit/README.md table whose header starts so."""
    lines = (DIT_DIR / 'README.md').read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(starts) == 1, f'no single table "{header}" in configs/dit/README.md'
    rows = []
    for line in lines[starts[0] + 2:]:  # after the header and its |---| line
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip().strip('|').split('|')])
    return rows


def variant(config: str) -> dict:
    """What a config's model is, in the terms of the paper's rows (read from the config)."""
    cfg = Config.fromfile(str(DIT_DIR / config))
    model, injector = cfg.model, cfg.model.get('injector')
    trainable = set(model.trainable)
    return dict(
        injector=None if injector is None else injector.get('mode', 'layer_wise'),
        injection=None if injector is None else injector.get('injection', 'linear'),
        static_prompts=0 if injector is None else injector.get('num_static_prompts', 0),
        decoder_layers=model.prompt_head.get('transformer', {}).get('depth', 2),
        sam_frozen='image_encoder' not in trainable,
        bert_frozen='text_encoder' not in trainable,
        sam=model.image_encoder.get('arch'),
        dataset=cfg.train_dataloader.dataset.split_file.split('/')[0])


def match(pattern: str, label: str) -> Tuple[str, ...]:
    found = re.fullmatch(pattern, label)
    assert found, f'row label {label!r} does not read as {pattern!r}'
    return found.groups()


def label_variant(label: str) -> dict:
    """What a paper row label (configs/dit/README.md's wording) says of its model. Tab. 1-4
    are ViT-B on RefCOCO; ``*`` (Tab. 1) and ✓ (Tab. 3's SAM, BERT columns) mean frozen."""
    if label in ('L-DIT', 'E-DIT'):  # a tiny twin of the DIT baselines
        return dict(injector=MODES[label[0]], injection='linear', static_prompts=0,
                    decoder_layers=2, sam_frozen=False, bert_frozen=False)
    table, rest = match(r'Tab\. (\d) (.+)', label)
    expected = dict(sam='vit_b', dataset='refcoco', bert_frozen=False)
    if table == '1' and rest.startswith(('Default', 'Add')):
        added, star = match(r'(?:Default|Add (\d) dec layers)(\*?)', rest)
        expected.update(injector=None, decoder_layers=2 + int(added or 0),
                        sam_frozen=star == '*')
    elif table == '1':
        kind, star = match(r'([EL])-DIT(\*?)', rest)
        expected.update(injector=MODES[kind], injection='linear', static_prompts=0,
                        decoder_layers=2, sam_frozen=star == '*')
    elif table == '2':
        kind, static = match(r'([EL])-DIT dynamic( \+ static)?', rest)
        expected.update(injector=MODES[kind], static_prompts=20 if static else 0,
                        sam_frozen=False)
    elif table == '3':
        kind, sam, bert = match(r'([EL])-DIT ([✓×]) ([✓×])', rest)
        expected.update(injector=MODES[kind], sam_frozen=sam == '✓', bert_frozen=bert == '✓')
    elif table == '4':
        injection = {'linear': 'linear', 'CrossAtt': 'cross_attn',
                     'CrossAtt + FFN': 'cross_attn_ffn'}.get(rest)
        assert injection, f'row label {label!r}: unknown Tab. 4 row'
        expected.update(injector='layer_wise', injection=injection, sam_frozen=False)
    elif table == '5':
        size, dataset = match(r'L-DIT_([BH]) (RefCOCO[+g]?)', rest)
        expected.update(injector='layer_wise', injection='linear', sam=f'vit_{size.lower()}',
                        dataset=dataset.lower(), sam_frozen=False)
    else:
        raise AssertionError(f'row label {label!r}: the paper has Tab. 1-5')
    return expected


def mismatches(expected: dict, actual: dict, skip=()) -> dict:
    return {k: (v, actual[k]) for k, v in expected.items() if k not in skip and actual[k] != v}


def test_readme_table_rows_are_their_configs():
    """Each row of configs/dit/README.md's table names a config whose model is what every label
    of the row says (variant, frozen parts, decoder depth, SAM size, dataset) and whose counts
    are the row's; every table row of ROWS is there, under its label."""
    rows = readme_table('| table, row | config |')
    assert rows
    by_config = {}
    for labels, config, _, params, _ in rows:
        config = config.strip('`')
        assert (DIT_DIR / config).is_file(), config
        actual = variant(config)
        for label in labels.split('; '):
            wrong = mismatches(label_variant(label), actual)
            assert not wrong, f'{label} -> {config}: (label says, config has) {wrong}'
        known = [(total, trainable) for cfg, total, trainable in ROWS.values() if cfg == config]
        assert known, f'{config}: not in ROWS, its counts are not checked'
        total, trainable = known[0]
        assert params == f'{total / 1e6:.1f}M ({trainable / 1e6:.1f}M)', config
        by_config[config] = labels.split('; ')
    for row, (config, _, _) in ROWS.items():
        if row.startswith('Tab.'):
            assert row in by_config.get(config, ()), f'{row} ({config}) is not in the table'


def test_readme_lists_every_dit_config():
    listed = set(re.findall(r'`([\w+.-]+\.py)`', (DIT_DIR / 'README.md').read_text()))
    configs = {p.name for p in DIT_DIR.glob('*.py')}
    assert configs <= listed, sorted(configs - listed)


def independent_counts(model: torch.nn.Module, trainable: Tuple[str, ...]) -> Tuple[int, int]:
    """(total, trainable) from the modules a config trains: every parameter of the top-level
    modules named in ``trainable`` but BERT's that never reach the output (the pooler, the
    layers from ``output_layer`` on), read from the BERT module itself."""
    output_layer = model.text_encoder.output_layer

    def unused(name: str) -> bool:
        if not name.startswith('text_encoder.'):
            return False
        layer = re.search(r'\.layer\.(\d+)\.', name)
        return '.pooler.' in name or (layer is not None and int(layer.group(1)) >= output_layer)

    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    trained = sum(p.numel() for name, p in params.items()
                  if name.split('.')[0] in trainable and not unused(name))
    return total, trained


@pytest.mark.parametrize('config', TINY)
def test_tiny_twins_count_and_model_their_row(config):
    """A tiny twin: count_params.py's counts equal the independent count of the built model,
    within the CPU budget; its model is its big twin's variant (named in its header) and what
    its paper row in configs/dit/README.md says; the README gives its parameters."""
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(DIT_DIR / config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    total, trainable = independent_counts(model, tuple(cfg.model.trainable))
    result = count(str(DIT_DIR / config))
    assert (result['total'], result['trainable']) == (total, trainable)
    assert total < 3_000_000  # CPU-sized

    header = (DIT_DIR / config).read_text().split('\n\n')[0]
    big = re.search(r'tiny twin of ([\w+.-]+\.py)', header.replace('#', ' ').replace('\n', ' '))
    assert big, f'{config}: its header names no big twin'
    tiny_variant = variant(config)
    assert not mismatches(variant(big.group(1)), tiny_variant, skip=('sam', 'dataset'))

    rows = {row[0].strip('`'): row for row in readme_table('| tiny twin | paper row |')}
    assert config in rows, f'{config} is not in the tiny twins table'
    _, label, params = rows[config][:3]
    assert not mismatches(label_variant(label), tiny_variant, skip=('sam', 'dataset'))
    assert params == f'{total / 1e6:.1f}M'


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
