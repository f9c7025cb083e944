"""The tiny L-DIT SynthRef config trains through mmengine's Runner, and tools/test.py (in this
process: its real subprocess run is test_slurm_scripts.py's, through slurm_test.sh) and the
inferencer run it unchanged (only data paths differ from the shipped config)."""
import mmcv
import pytest
import torch
from mmengine.runner import Runner

from tests.conftest import metric_table, run_tool
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


def test_tools_test_runs_dit_config(trained, tmp_path, monkeypatch, capsys):
    rows = metric_table(run_tool('test', [trained['config'], trained['checkpoint'],
                                          '--work-dir', tmp_path], monkeypatch, capsys))
    assert list(rows) == ['synthref_val', 'synthref_testA', 'synthref_testB']
    for values in rows.values():
        assert 0.0 <= values.pop('crossIoU') <= 1.0 and values.pop('pairs') > 0
        values.pop('images')
        assert values and all(0.0 <= v <= 100.0 for v in values.values()), values  # percentages


def test_inferencer_runs_dit_config(trained, synthref_root):
    from mmevf.apis import TextSegInferencer
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    inferencer = TextSegInferencer(str(trained['config']), weights=str(trained['checkpoint']),
                                   device='cpu', show_progress=False)
    out = inferencer(str(image), ['the red circle', 'the leftmost square'])
    masks = out['predictions'][0]['masks']
    assert masks.shape == (2, *mmcv.imread(str(image)).shape[:2]) and masks.dtype == bool
