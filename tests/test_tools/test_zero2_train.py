"""The tiny config's ZeRO-2 variant (FlexibleRunner + DeepSpeedStrategy, bf16) trains with two
CPU processes and a resumed run repeats the uninterrupted one; both runs in one torchrun launch
(tests/fixtures/zero2_train_resume.py)."""
import sys

import torch
from mmengine.config import Config

from tests.conftest import free_port, run_command
from tests.fixtures.tiny_runs import ROOT, logged_losses as losses, tiny_cfg

SHARDS = ['bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt',
          'bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt',
          'mp_rank_00_model_states.pt']  # ZeRO-2: the optimizer state split in two


def model_states(checkpoint_dir) -> dict:
    """The (bf16) weights of a DeepSpeed checkpoint folder."""
    return torch.load(checkpoint_dir / 'mp_rank_00_model_states.pt', map_location='cpu',
                      weights_only=False)['module']


def test_zero2_dist_train_and_resume(synthref_root, tmp_path):
    # two iterations, a checkpoint after each; resumed from the first, the second iteration's
    # loss shows the restored weights, its update the restored optimizer state (AdamW moments
    # and fp32 master weights: a fresh AdamW step moves the weights differently)
    cfg = tiny_cfg(synthref_root, tmp_path / 'full', **{
        'train_cfg.max_iters': 2, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': -1})
    zero2 = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-tiny_synthref_zero2.py'))
    for key in ('runner_type', 'strategy', 'optim_wrapper'):
        cfg[key] = zero2[key]
    config = tmp_path / 'tiny_zero2.py'
    cfg.dump(str(config))

    resumed_dir = tmp_path / 'resumed'
    resumed_dir.mkdir()
    log = run_command([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                       f'--master_port={free_port()}',
                       str(ROOT / 'tests/fixtures/zero2_train_resume.py'), str(config),
                       str(tmp_path / 'full'), str(resumed_dir)])
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    # deepspeed's shared-memory op (inference only) is not JIT-compiled on a CPU launch
    assert 'shm_comm' not in log, log[-2000:]
    assert sorted(p.name for p in (tmp_path / 'full/iter_1.pth').iterdir()) == SHARDS
    full, resumed = losses(tmp_path / 'full'), losses(resumed_dir)
    assert sorted(full) == [1, 2]
    assert sorted(resumed) == [2] and abs(resumed[2] - full[2]) < 1e-4, (resumed, full)
    before = model_states(tmp_path / 'full/iter_1.pth')
    after, uninterrupted = (model_states(d / 'iter_2.pth') for d in (resumed_dir,
                                                                    tmp_path / 'full'))
    assert any(not torch.equal(after[k], before[k]) for k in before)  # the step moved them
    for key in uninterrupted:
        assert torch.equal(after[key], uninterrupted[key]), key
