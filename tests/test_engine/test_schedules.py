"""The paper recipe's schedule: warm-up then linear decay to 0 over 30k micro-batch iterations
(15k optimizer steps of 128 samples)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import PARAM_SCHEDULERS

ROOT = Path(__file__).resolve().parents[2]


def lr_trace(cfg, iterations):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [PARAM_SCHEDULERS.build(dict(s), default_args=dict(optimizer=optimizer))
                  for s in cfg.param_scheduler]
    trace = {}
    for it in range(max(iterations) + 1):
        if it in iterations:
            trace[it] = optimizer.param_groups[0]['lr']
        for scheduler in schedulers:
            scheduler.step()
    return trace


def test_paper_schedule_values():
    cfg = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    assert cfg.train_cfg.max_iters == 30000
    assert cfg.optim_wrapper.accumulative_counts == 2
    assert cfg.train_dataloader.batch_size * 4 * 2 == 128  # per GPU x 4 GPUs x accumulation
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr) == ('AdamW', 1e-4)
    trace = lr_trace(cfg, [0, 100, 199, 200, 15100, 29999])
    # mmengine's LinearLR reaches its end factor at iteration end - 1
    assert trace[0] == pytest.approx(1e-7)
    assert trace[100] == pytest.approx(1e-4 * (1e-3 + (1 - 1e-3) * 100 / 199))
    assert trace[199] == trace[200] == pytest.approx(1e-4)
    assert trace[15100] == pytest.approx(1e-4 * (1 - 14900 / 29799), rel=1e-6)
    assert trace[29999] == pytest.approx(0.0, abs=1e-12)


def test_zero2_variant_moves_precision_and_accumulation_to_deepspeed():
    cfg = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-beit3l_sam-h_refcoco_zero2.py'))
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.zero_optimization.stage == 2 and cfg.strategy.bf16.enabled
    assert cfg.strategy.gradient_accumulation_steps == 2
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert 'accumulative_counts' not in cfg.optim_wrapper
