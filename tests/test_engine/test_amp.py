"""`tools/train.py --amp` on a CPU: mmevf's AnyDeviceAmpOptimWrapper autocasts (bf16 or fp16),
trains the tiny config and resumes it; mmengine's own wrapper refuses to be built without a GPU
(and keeps its name in scope mmevf)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.runner import Runner

from mmevf.registry import OPTIM_WRAPPERS
from tests.conftest import load_tool
from tests.fixtures.tiny_runs import tiny_cfg


def build_wrapper(**kwargs):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, OPTIM_WRAPPERS.build(dict(type='AnyDeviceAmpOptimWrapper', optimizer=optimizer,
                                            **kwargs))


def test_mmengine_wrapper_needs_an_accelerator():
    with pytest.raises(AssertionError, match='only available'):
        MMEngineAmpOptimWrapper(optimizer=torch.optim.SGD([torch.zeros(1)], lr=0.1))
    # mmevf's wrapper does not shadow mmengine's name
    assert OPTIM_WRAPPERS.get('AmpOptimWrapper') is MMEngineAmpOptimWrapper


@pytest.mark.parametrize('dtype,scaled', [(None, False), ('bfloat16', False),
                                          ('float16', True)])
def test_cpu_autocast_and_loss_scale(dtype, scaled):
    # a moderate first scale: at the default 2**16 an fp16 gradient may overflow, and the
    # scaler then (rightly) skips the step
    model, wrapper = build_wrapper(dtype=dtype, loss_scale=dict(init_scale=256.0))
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == (torch.float16 if dtype == 'float16' else torch.bfloat16)
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(before, model.weight)
    state = wrapper.state_dict()
    assert ('scale' in state['loss_scaler']) == scaled
    if scaled:  # fp16's dynamic loss scale survives a checkpoint
        _, restored = build_wrapper(dtype=dtype, loss_scale=dict(init_scale=256.0))
        restored.load_state_dict(state)
        assert restored.loss_scaler.get_scale() == wrapper.loss_scaler.get_scale()


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match='dtype should be one of'):
        build_wrapper(dtype='int8')


@pytest.mark.parametrize('argv, dtype', [(['--amp'], 'bfloat16'), (['--dtype', 'fp16'], 'float16'),
                                         (['--amp', '--dtype', 'bf16'], 'bfloat16')])
def test_train_cli_amp_and_dtype(argv, dtype, monkeypatch):
    """``--dtype`` (the CLI spelling) implies ``--amp`` and reaches the config in mmengine's
    spelling; without it the config's dtype stays."""
    monkeypatch.setenv('LOCAL_RANK', '0')  # parse_args sets it when absent
    train = load_tool('train')
    args = train.parse_args(['config.py', *argv])
    assert args.amp or args.dtype
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', dtype='bfloat16',
                                         optimizer=dict(type='SGD', lr=0.1))))
    train.use_amp(cfg, args.dtype)
    assert cfg.optim_wrapper == dict(type='AnyDeviceAmpOptimWrapper', loss_scale='dynamic',
                                     dtype=dtype, optimizer=dict(type='SGD', lr=0.1))
    with pytest.raises(SystemExit):  # torch's spelling is the config's, not the CLI's
        train.parse_args(['config.py', '--dtype', 'bfloat16'])


def test_tiny_amp_train_and_resume(synthref_root, tmp_path):
    amp = dict(type='AnyDeviceAmpOptimWrapper', dtype='bfloat16', loss_scale='dynamic')

    def run(work_dir, **overrides):
        cfg = tiny_cfg(synthref_root, work_dir, **overrides)
        cfg.optim_wrapper.update(amp)
        runner = Runner.from_cfg(cfg)
        seen = []
        runner.model.projector.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        runner.train()
        return list(runner.message_hub.get_scalar('train/loss').data[0]), seen

    full, seen = run(tmp_path / 'full')
    assert seen == [torch.bfloat16] * 4  # the forward really ran under bf16 autocast
    resumed, _ = run(tmp_path / 'full', resume=True, load_from=str(tmp_path / 'full/iter_2.pth'))
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(full), rtol=1e-5, atol=1e-6)
