"""MMEngine checkpoints save and resume on torch >= 2.6 (weights_only=True), and a checkpoint
can never run code while it is loaded."""
import os
import pickle
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, Runner

import mmevf  # noqa: F401  (registers the checkpoint loader)
from mmevf.checkpoint import load_local_checkpoint as load_checkpoint_file

CONFIG = Path(__file__).resolve().parents[1] / 'fixtures' / 'configs' / 'toy_regression.py'


def build_runner(work_dir: Path, **overrides) -> Runner:
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def logged_losses(runner: Runner) -> list:
    return list(runner.message_hub.get_scalar('train/loss').data[0])


def test_runner_saves_and_resumes(tmp_path):
    full = build_runner(tmp_path / 'full')
    full.train()
    reference = logged_losses(full)
    assert (tmp_path / 'full' / 'iter_4.pth').is_file()

    resumed = build_runner(
        tmp_path / 'full', resume=True, load_from=str(tmp_path / 'full' / 'iter_4.pth'))
    resumed.train()
    # Resumed from iteration 4: the restored message hub holds iterations 1-4, the rerun
    # appends 5-8, and with deterministic data order they equal the uninterrupted run.
    assert resumed.iter == 8
    torch.testing.assert_close(
        torch.tensor(logged_losses(resumed)), torch.tensor(reference), rtol=1e-6, atol=1e-7)


def test_pure_weight_files_load_with_weights_only(tmp_path):
    path = tmp_path / 'sam_like.pth'
    state = {'image_encoder.patch_embed.proj.weight': torch.randn(4, 3, 2, 2)}
    torch.save(state, path)
    loaded = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    torch.testing.assert_close(loaded, state)


class _Payload:
    """Unpickling this calls os.system: the attack a checkpoint must not be able to carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.mark.parametrize('container', ['state_dict', 'meta'])
def test_code_payload_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({container: {'x': _Payload(marker)}}, path)
    with pytest.raises(RuntimeError, match='refusing to load checkpoint .*evil.pth'):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer(tmp_path):
    """HistoryBuffer needs `getattr(HistoryBuffer, 'mean')`; nothing else may be looked up."""

    class Sneaky:

        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'sneaky.pth'
    with open(path, 'wb') as f:
        pickle.dump({'a': Sneaky()}, f, protocol=2)
    with pytest.raises(RuntimeError, match='refusing to load'):
        load_checkpoint_file(str(path))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        load_checkpoint_file(str(tmp_path / 'nothing.pth'))
