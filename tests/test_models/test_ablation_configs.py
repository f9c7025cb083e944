"""Each ablation config trains what its paper table row says.

EVF-SAM Tab. 3 / 4 / 5 (configs/evf_sam/ablations/) and the DIT settings of
../shared/reference/dit.md §5.3 (configs/dit/): the resolved ``model.trainable`` and switches
are checked against the row, then the model is built on the ``meta`` device (no memory, no
weights) and the parts whose parameters require gradients are compared with the row too.
"""
from typing import Dict, Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmevf.registry import MODELS

EVF = 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'
ABL = 'configs/evf_sam/ablations/evf-beit3l_sam-h_refcoco_'
DIT = 'configs/dit/l-dit_sam-b_bert-base_refcoco'
FULL_EVF = ('mm_encoder', 'projector', 'prompt_head')
FULL_DIT = ('image_encoder', 'text_encoder', 'injector', 'text_to_prompt', 'prompt_head')

# config -> (trainable prefixes, other resolved model keys of the row)
ROWS: Dict[str, Tuple[Tuple[str, ...], dict]] = {
    EVF: (FULL_EVF, {}),
    # Tab. 3: how image and text meet; the full recipe trains
    ABL + 'early-fusion-12.py': (FULL_EVF, {'mm_encoder.fusion_layers': 12}),
    ABL + 'late-fusion.py': (FULL_EVF, {'mm_encoder.fusion_layers': 0,
                                        'projector.token': 'cls_concat'}),
    ABL + 'text-only.py': (FULL_EVF, {'mm_encoder_image': False, 'projector.token': 'text_cls'}),
    # Tab. 4: what trains (the new projector always does)
    ABL + 'frozen-mm-encoder.py': (('projector', 'prompt_head.mask_decoder'), {}),
    ABL + 'frozen-prompt-encoder.py': (('mm_encoder', 'projector', 'prompt_head.mask_decoder'),
                                       {}),
    ABL + 'frozen-sam.py': (('mm_encoder', 'projector'), {}),
    # Tab. 5: which output token prompts SAM
    ABL + 'token-cls-concat.py': (FULL_EVF, {'projector.token': 'cls_concat'}),
    ABL + 'token-image-mean.py': (FULL_EVF, {'projector.token': 'image_mean'}),
    ABL + 'token-text-cls.py': (FULL_EVF, {'projector.token': 'text_cls'}),
    # DIT settings (dit.md §5.3)
    DIT + '.py': (FULL_DIT, {}),
    DIT + '_frozen-bert.py': (('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'),
                              {'text_encoder.frozen': True}),
    DIT + '_frozen-sam.py': (('text_encoder', 'injector', 'text_to_prompt', 'prompt_head'), {}),
    DIT + '_frozen-sam-bert.py': (('injector', 'text_to_prompt', 'prompt_head'),
                                  {'text_encoder.frozen': True}),
}

# The parts a row switches on or off (SAM's prompt encoder and mask decoder separately).
PARTS = ('image_encoder', 'mm_encoder', 'projector', 'text_encoder', 'injector',
         'text_to_prompt', 'prompt_head.prompt_encoder', 'prompt_head.mask_decoder')

# dit.md §5.3, L-DIT_B trainable parameters (M) by setting, for SAM's ViT-B encoder built at
# 1024 (89.67M); BERT's pooler (0.59M), which never reaches the output, is frozen here whenever
# BERT trains.
SAM_VIT_B_M = 89.67
DIT_TRAINABLE_M = {
    DIT + '.py': 210.5 - 0.59,
    DIT + '_frozen-bert.py': 101.0,
    DIT + '_frozen-sam.py': 120.8 - 0.59,
    DIT + '_frozen-sam-bert.py': 11.35,
}


def resolved(repo_root, config: str) -> Config:
    return Config.fromfile(str(repo_root / config))


def lookup(cfg: Config, dotted: str):
    value = cfg.model
    for key in dotted.split('.'):
        value = value[key]
    return value


@pytest.mark.parametrize('config', sorted(ROWS))
def test_resolved_config_matches_its_row(repo_root, config):
    cfg = resolved(repo_root, config)
    trainable, switches = ROWS[config]
    default = FULL_DIT if cfg.model.type == 'DITSAM' else FULL_EVF
    assert tuple(cfg.model.get('trainable', default)) == trainable
    for key, value in switches.items():
        assert lookup(cfg, key) == value, key
    if config != EVF:  # the rows name their table and figure first
        with open(repo_root / config) as f:
            first = f.readline()
        assert first.startswith(('# EVF-SAM Tab.', '# DIT paper', '# DIT setting')), first


def test_every_ablation_config_has_a_row(repo_root):
    shipped = {str(p.relative_to(repo_root))
               for p in (repo_root / 'configs/evf_sam/ablations').glob('*.py')}
    assert shipped <= set(ROWS)


def trainable_parts(model: torch.nn.Module) -> Dict[str, str]:
    """part -> 'all' / 'none' / 'some' of its parameters requiring gradients."""
    parts = {}
    for part in PARTS:
        flags = [p.requires_grad for n, p in model.named_parameters() if n.startswith(part + '.')]
        if flags:
            parts[part] = 'all' if all(flags) else 'none' if not any(flags) else 'some'
    return parts


@pytest.mark.parametrize('config', sorted(ROWS))
def test_built_model_trains_the_row(repo_root, config):
    cfg = resolved(repo_root, config)
    init_default_scope('mmevf')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    trainable, _ = ROWS[config]
    parts = trainable_parts(model)
    for part, state in parts.items():
        listed = part.startswith(trainable) or any(t.startswith(part + '.') for t in trainable)
        if part == 'text_encoder' and listed:
            # BERT's pooler (and layers after output_layer) never reach the output: frozen
            assert state in ('all', 'some'), part
        else:
            assert state == ('all' if listed else 'none'), (part, state)
    if config in DIT_TRAINABLE_M:
        count = sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
        expected = DIT_TRAINABLE_M[config]
        if parts['image_encoder'] == 'all':
            # the encoder is built at its run size (a 512² pos_embed is smaller than 1024²'s)
            built = sum(p.numel() for p in model.image_encoder.parameters()) / 1e6
            expected += built - SAM_VIT_B_M
        assert count == pytest.approx(expected, abs=0.06)
