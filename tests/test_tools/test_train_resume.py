"""The tiny SynthRef config trains for real and a resumed run repeats the uninterrupted one:
the losses of the iterations after the checkpoint are equal (deterministic mode)."""

import torch
from tests.fixtures.tiny_runs import ROOT, tiny_cfg, train_losses  # noqa: F401


def test_tiny_train_and_resume(synthref_root, tmp_path):
    full = train_losses(tiny_cfg(synthref_root, tmp_path / 'full'))
    assert len(full) == 4 and all(torch.isfinite(torch.tensor(full)))
    resumed = train_losses(tiny_cfg(
        synthref_root, tmp_path / 'full', resume=True,
        load_from=str(tmp_path / 'full' / 'iter_2.pth')))
    # the restored message hub holds iterations 1-2; 3-4 are recomputed after resuming
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(full), rtol=1e-5, atol=1e-6)
