"""The tiny multi-task config end to end on SynthRef and small twins: tools/test.py prints one
row per source (the semantic row with mmseg's mIoU too) whose numbers equal a run over that
source alone, and tools/train.py trains it for 2 iterations. Both tools run in this process
(their real subprocess runs are test_slurm_scripts.py's, through the slurm scripts). The
sampler's split between ranks is test_ratio_source_sampler.py's; two-process training and
resuming are tested on the toy model (test_dist_train.py) and under ZeRO-2
(test_zero2_train.py): mmengine advances any sampler, this one too, by drawing the batches
already trained."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmevf.checkpoint import load_local_checkpoint
from mmevf.registry import MODELS
from tests.conftest import metric_table, run_tool
from tools.dataset_converters.synthref import make_synthref_twins

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/evf_sam/evf-tiny_synthref_multitask.py'
SOURCES = ['synthref_val', 'synthref_testA', 'synthref_testB', 'semantic_val', 'parts_val',
           'humanparsing_val']
FAST_LOADER = ['num_workers=0', 'persistent_workers=False']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, synthref_root) -> Path:
    """A folder laid out like the repository's data/ for the config's relative paths, with a
    random-weight checkpoint of the tiny model."""
    cwd = tmp_path_factory.mktemp('multitask')
    (cwd / 'data').mkdir()
    (cwd / 'data/synthref').symlink_to(synthref_root)
    make_synthref_twins(str(cwd / 'data/synthref_twins'), num_images=12, seed=2)
    init_default_scope('mmevf')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(CONFIG)).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), cwd / 'tiny.pth')
    return cwd


def run_in(workspace: Path, name: str, argv: list, monkeypatch, capsys) -> str:
    """tools/<name>.py from the workspace (the config's relative data paths), in this process."""
    monkeypatch.chdir(workspace)
    return run_tool(name, argv, monkeypatch, capsys)


def test_test_tool_one_row_per_source(workspace, monkeypatch, capsys):
    options = ['--cfg-options'] + [f'test_dataloader.{o}' for o in FAST_LOADER]
    rows = metric_table(run_in(workspace, 'test', [CONFIG, 'tiny.pth', '--work-dir', 'all',
                                                   *options], monkeypatch, capsys))
    assert list(rows) == SOURCES
    assert all({'cIoU', 'gIoU', 'crossIoU'} <= set(r) for r in rows.values())
    assert set(rows) - {'semantic_val'} == {s for s in rows if 'mIoU' not in rows[s]}
    assert 0 <= rows['semantic_val']['mIoU'] <= 100

    # the semantic source alone, as its own single-dataset test run: the same numbers
    cfg = Config.fromfile(str(CONFIG))
    alone = workspace / 'semantic_alone.py'
    alone.write_text(
        f'_base_ = [{str(CONFIG)!r}]\n'
        'test_dataloader = dict(dataset=dict(_delete_=True, '
        f'**{cfg.test_dataloader.dataset.datasets[3].to_dict()!r}))\n'
        f'test_evaluator = [dict({cfg.test_evaluator.metrics[3]!r}, '
        "prefix='semantic_val')]\n")
    single = metric_table(run_in(workspace, 'test', [alone, 'tiny.pth', '--work-dir', 'alone',
                                                     *options], monkeypatch, capsys))
    assert single == {'semantic_val': rows['semantic_val']}


def test_train_two_iterations(workspace, monkeypatch, capsys):
    options = ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
               'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.save_best=None',
               'default_hooks.logger.interval=1',
               'train_dataloader.batch_size=2', 'train_dataloader.sampler.batch_size=2',
               *[f'train_dataloader.{o}' for o in FAST_LOADER]]
    run_in(workspace, 'train', [CONFIG, '--work-dir', 'train', *options], monkeypatch, capsys)
    first, second = (load_local_checkpoint(str(workspace / f'train/iter_{i}.pth'))['state_dict']
                     for i in (1, 2))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the 2nd step updated
