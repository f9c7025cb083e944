"""Training reliability: NaN / inf losses stop the run by name, checkpoints are written
atomically."""
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio import LocalBackend, get_file_backend

import mmevf  # noqa: F401  (registers the atomic local backend)
from mmevf.checkpoint import ATOMIC_BACKEND_ARGS, AtomicLocalBackend
from mmevf.engine import InvalidLossHook


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_invalid_loss_names_the_iteration(value):
    hook = InvalidLossHook()
    runner = SimpleNamespace(iter=41)
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(1.5)))
    with pytest.raises(RuntimeError, match=f'loss is {value} at iteration 42 .*loss_mask_dice'):
        hook.after_train_iter(runner, 0, outputs=dict(
            loss=torch.tensor(value), loss_mask_dice=torch.tensor(value)))


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'work' / 'iter_10.pth'
    # only checkpoint writes (which ask for it) are atomic; other local files keep mmengine's
    assert type(get_file_backend(str(path))) is LocalBackend
    backend = get_file_backend(str(path), backend_args=ATOMIC_BACKEND_ARGS)
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'complete checkpoint', str(path))
    assert path.read_bytes() == b'complete checkpoint'

    def crash(*args):
        raise KeyboardInterrupt('killed while saving')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'half', str(path))
    assert path.read_bytes() == b'complete checkpoint'
    assert os.listdir(path.parent) == ['iter_10.pth']  # no temporary file left behind
