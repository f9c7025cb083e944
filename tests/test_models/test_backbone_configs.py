"""configs/evf_sam/backbones/: every example builds; SAM-H written as mmpretrain's ViTSAM is the
paper model (same parameters, official SAM-H keys map onto it one to one); the tiny twins train
(finite losses, their image encoders learn) and tools/test.py scores one on SynthRef."""
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmevf.models  # noqa: F401
from mmevf.checkpoint.layouts import sam_vit_to_vitsam
from mmevf.registry import MODELS
from tests.conftest import metric_table, run_tool
from tests.fixtures.tiny_runs import tiny_cfg
from tools.analysis.count_params import count as count_config, parameters_on_meta

ROOT = Path(__file__).resolve().parents[2]
BACKBONES = ROOT / 'configs/evf_sam/backbones'
SAM_H = ROOT / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'
TINY_TWINS = ['evf-tiny_vitsam_synthref.py', 'evf-tiny_convnext_synthref.py',
              'evf-tiny_swin_synthref.py']


@lru_cache(maxsize=None)
def count(config: str) -> dict:
    """tools/analysis/count_params.py's counts of ``config``; SAM-H's are read three times."""
    return count_config(config)


def test_vitsam_h_config_is_the_paper_model():
    paper = count(str(SAM_H))
    vitsam = count(str(BACKBONES / 'evf-beit3l_vitsam-h_refcoco.py'))
    assert vitsam['total'] == paper['total'] == 1_315_105_072
    assert vitsam['trainable'] == paper['trainable']  # the image encoder is frozen in both
    assert vitsam['modules'] == paper['modules']

    # sam_vit_h_4b8939.pth's image_encoder.* keys (those of the SAM-H SAMImageEncoder), renamed
    # as at load time, are exactly the ViTSAM encoder's, with the same shapes
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(BACKBONES / 'evf-beit3l_vitsam-h_refcoco.py')).model
    assert cfg.image_encoder.init_cfg.layout == 'sam'
    with parameters_on_meta():
        official = MODELS.build(Config.fromfile(str(SAM_H)).model.image_encoder)
        encoder = MODELS.build(cfg.image_encoder)
    renamed = sam_vit_to_vitsam({k: v for k, v in official.state_dict().items()})
    mine = encoder.state_dict()
    assert {f'backbone.{k}': v.shape for k, v in renamed.items()} == {
        k: v.shape for k, v in mine.items()}
    layers = encoder.backbone.layers
    assert [i for i, layer in enumerate(layers) if layer.window_size == 0] == [7, 15, 23, 31]
    assert {layer.window_size for layer in layers} == {0, 14}
    # the tiny twin is the tiny SAM-style ViT too
    assert count(str(BACKBONES / 'evf-tiny_vitsam_synthref.py'))['modules'] == count(
        str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py'))['modules']


@pytest.mark.parametrize('config', ['evf-beit3l_convnext-b_refcoco.py',
                                    'evf-beit3l_swin-b_refcoco.py'])
def test_trained_backbone_configs_build(config):
    result = count(str(BACKBONES / config))
    paper = count(str(SAM_H))
    image_encoder = result['modules']['image_encoder']
    assert image_encoder[0] > 50_000_000 and image_encoder[1] == image_encoder[0]  # it trains
    for part in ('mm_encoder', 'projector', 'prompt_head'):  # the rest is the paper model's
        assert result['modules'][part] == paper['modules'][part]


class ParameterSnapshot(Hook):
    """The model's parameters when training starts (after their initialisation)."""

    def before_train(self, runner) -> None:
        self.params = {k: v.detach().clone() for k, v in runner.model.named_parameters()}


@pytest.mark.parametrize('name', TINY_TWINS)
def test_tiny_twin_trains(name, synthref_root, tmp_path):
    runner = Runner.from_cfg(tiny_cfg(synthref_root, tmp_path, BACKBONES / name, **{
        'train_cfg.max_iters': 2, 'default_hooks.checkpoint.interval': 100}))
    snapshot = ParameterSnapshot()
    runner.register_hook(snapshot)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert type(runner.model.image_encoder).__name__ == 'BackboneImageEncoder'
    changed = {k for k, v in runner.model.named_parameters()
               if not torch.equal(v.detach(), snapshot.params[k])}
    encoder = {k for k, _ in runner.model.named_parameters() if k.startswith('image_encoder.')}
    assert encoder and encoder <= changed  # every weight of the swapped-in encoder learns
    assert any(k.startswith('mm_encoder.') for k in changed)


def test_test_tool_scores_a_swapped_tiny_config(synthref_root, tmp_path, monkeypatch, capsys):
    cfg = Config.fromfile(str(BACKBONES / 'evf-tiny_convnext_synthref.py'))
    cfg.test_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    for dataset in cfg.test_dataloader.dataset.datasets:
        dataset.data_root = str(synthref_root)
        for transform in dataset.pipeline:
            if transform.type == 'TokenizeText':
                transform.tokenizer = str(synthref_root / 'tokenizer')
    config = tmp_path / 'tiny_convnext.py'
    cfg.dump(str(config))
    init_default_scope('mmevf')
    torch.manual_seed(0)
    checkpoint = tmp_path / 'random.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta=dict()), checkpoint)

    rows = metric_table(run_tool('test', [config, checkpoint, '--work-dir', tmp_path / 'work'],
                                 monkeypatch, capsys))
    assert list(rows) == ['synthref_val', 'synthref_testA', 'synthref_testB']
    for values in rows.values():
        assert list(values)[:5] == ['cIoU', 'gIoU', 'P@0.5', 'P@0.7', 'P@0.9']
        assert all(0.0 <= values[name] <= 100.0 for name in list(values)[:5])
        assert 0.0 <= values['crossIoU'] <= 1.0 and values['images'] > 0
