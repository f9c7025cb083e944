"""The tiny L-DIT SynthRef config trains through mmengine's Runner, and tools/test.py and the
inferencer run it unchanged (only data paths differ from the shipped config)."""
import os
import subprocess
import sys

import mmcv
import pytest
import torch
from mmengine.runner import Runner

from tests.fixtures.tiny_runs import ROOT, dit_tiny_cfg

CONFIG = ROOT / 'configs/dit/l-dit-tiny_synthref.py'


@pytest.fixture(scope='module')
def trained(synthref_root, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('dit_run')
    cfg = dit_tiny_cfg(synthref_root, work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    config = work_dir / 'dit_tiny_local.py'
    cfg.dump(str(config))
    return dict(losses=losses, config=config, checkpoint=work_dir / 'iter_2.pth',
                runner=runner)


def test_two_iterations_train(trained):
    assert len(trained['losses']) == 2
    assert all(torch.isfinite(torch.tensor(trained['losses'])))
    assert trained['checkpoint'].is_file()
    model = trained['runner'].model
    assert type(model).__name__ == 'DITSAM'
    # AdamW moved every trained projection away from its zero initialisation
    assert all(p.any() for p in model.injector.layer_projs.parameters())


def test_tools_test_runs_dit_config(trained, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', str(trained['config']), str(trained['checkpoint']),
         '--work-dir', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index('split '):].splitlines()
    assert [line.split()[0] for line in table[2:5]] == [
        'synthref_val', 'synthref_testA', 'synthref_testB']
    header = table[0].split()[1:]
    for line in table[2:5]:
        values = dict(zip(header, map(float, line.split()[1:])))
        assert 0.0 <= values.pop('crossIoU') <= 1.0 and values.pop('pairs') > 0
        values.pop('images')
        assert all(0.0 <= v <= 100.0 for v in values.values()), values  # percentages


def test_inferencer_runs_dit_config(trained, synthref_root):
    from mmevf.apis import TextSegInferencer
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    inferencer = TextSegInferencer(str(trained['config']), weights=str(trained['checkpoint']),
                                   device='cpu', show_progress=False)
    out = inferencer(str(image), ['the red circle', 'the leftmost square'])
    masks = out['predictions'][0]['masks']
    assert masks.shape == (2, *mmcv.imread(str(image)).shape[:2]) and masks.dtype == bool
