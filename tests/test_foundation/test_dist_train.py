"""tools/dist_train.sh trains with two CPU processes over gloo: DDP really averages gradients
(2 processes x batch 4 == 1 process x batch 8). A two-process run resumes in
test_zero2_train.py (torchrun, the runner tools/train.py builds)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmevf.checkpoint import load_local_checkpoint as load_checkpoint_file
from mmevf.compat import setup_cpu_distributed
from tests.conftest import free_port, run_command, run_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'tests/fixtures/configs/toy_regression.py'


def run(cmd: list, **env) -> str:
    return run_command(cmd, ROOT, **env)


def final_weights(work_dir: Path) -> dict:
    return load_checkpoint_file(str(work_dir / 'iter_8.pth'))['state_dict']


@pytest.fixture(scope='module')
def dist_run(tmp_path_factory) -> Path:
    work_dir = tmp_path_factory.mktemp('dist')
    log = run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work_dir)],
              PORT=str(free_port()))
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    return work_dir


def test_two_cpu_processes_equal_one_process_with_double_batch(dist_run, tmp_path, monkeypatch,
                                                               capsys):
    # the one-process run in this process: tools/train.py runs as a real subprocess through
    # dist_train.sh (above) and slurm_train.sh (test_slurm_scripts.py)
    run_tool('train', [ROOT / CONFIG, '--work-dir', tmp_path, '--cfg-options',
                       'train_dataloader.batch_size=8'], monkeypatch, capsys)
    single, dist = final_weights(tmp_path), final_weights(dist_run)
    for key in single:
        torch.testing.assert_close(dist[key], single[key], rtol=1e-5, atol=1e-6)


def test_cpu_launch_settings(monkeypatch):
    """Without CUDA a pytorch launch gets gloo and DDP without device_ids; else untouched."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    cfg = Config(dict(launcher='pytorch', model_wrapper_cfg=dict(
        type='MMDistributedDataParallel', find_unused_parameters=True)))
    assert setup_cpu_distributed(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', find_unused_parameters=True, device_ids=None)

    flexible = Config(dict(launcher='pytorch', strategy=dict(type='DDPStrategy')))
    assert setup_cpu_distributed(flexible)
    assert flexible.strategy.model_wrapper.device_ids is None

    top_level = Config(dict(launcher='pytorch', find_unused_parameters=True))
    assert setup_cpu_distributed(top_level)
    assert top_level.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', find_unused_parameters=True, device_ids=None)

    assert not setup_cpu_distributed(Config(dict(launcher='none')))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    gpu = Config(dict(launcher='pytorch'))
    assert not setup_cpu_distributed(gpu) and 'model_wrapper_cfg' not in gpu
