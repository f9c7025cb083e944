"""The tiny SynthRef twins of the DIT paper's new variants (the "Default" baseline and its deeper
decoders, the cross-attention injections, static prompts) train 2 iterations through mmengine's
Runner and pass tools/test.py unchanged (only data paths differ from the shipped configs).
tools/test.py runs in-process here, as in test_dit_runner.py."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.conftest import metric_table, run_tool
from tests.fixtures.tiny_runs import dit_tiny_cfg

ROOT = Path(__file__).resolve().parents[2]
TINY = ['default-tiny_synthref.py', 'default-add2-tiny_synthref.py',
        'default-add4-tiny_synthref.py', 'l-dit-tiny_synthref_cross-attn.py',
        'l-dit-tiny_synthref_cross-attn-ffn.py', 'l-dit-tiny_synthref_static-prompts.py',
        'e-dit-tiny_synthref_static-prompts.py']


def local_cfg(config: str, synthref_root: Path, work_dir: Path) -> Config:
    """A tiny twin on the test's SynthRef (40 images), 2 iterations, no workers."""
    return dit_tiny_cfg(synthref_root, work_dir, ROOT / 'configs/dit' / config)


@pytest.fixture(scope='module', params=TINY)
def trained(request, synthref_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp(request.param.replace('.py', ''))
    cfg = local_cfg(request.param, synthref_root, work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    config = work_dir / 'tiny_local.py'
    cfg.dump(str(config))
    return dict(name=request.param, runner=runner, config=config,
                losses=list(runner.message_hub.get_scalar('train/loss').data[0]),
                checkpoint=work_dir / 'iter_2.pth')


def test_two_iterations_and_tools_test(trained, tmp_path, monkeypatch, capsys):
    assert len(trained['losses']) == 2
    assert all(torch.isfinite(torch.tensor(trained['losses'])))
    assert trained['checkpoint'].is_file()
    model = trained['runner'].model
    name = trained['name']
    if name.startswith('default'):
        assert model.injector is None
        depth = {'default-add2': 4, 'default-add4': 6}.get(name.split('-tiny')[0], 2)
        assert len(model.prompt_head.mask_decoder.transformer.layers) == depth
    elif 'cross-attn' in name:
        assert len(model.injector.text_maps) == 4 and len(model.injector.layer_projs) == 0
    else:
        assert model.injector.static_prompts is not None
    rows = metric_table(run_tool('test', [trained['config'], trained['checkpoint'],
                                          '--work-dir', tmp_path], monkeypatch, capsys))
    assert list(rows) == ['synthref_val', 'synthref_testA', 'synthref_testB']
    assert all('mIoU' in values for values in rows.values())  # DIT's metric list
