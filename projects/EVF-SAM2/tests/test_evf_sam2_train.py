"""Training the tiny EVF-SAM2 on SynthRef with the maintainers' recipe (SAM-2 frozen, unchanged,
in eval mode; only BEiT-3 and the projector train): two iterations and a validation pass, bf16
AMP, ZeRO-2 through tools/dist_train.sh; SAM-2's pretrained file."""
import torch
from evf_sam2_helpers import TINY_CONFIG, require_sam2

from tests.fixtures.tiny_runs import tiny_cfg

require_sam2()


def test_tiny_train_two_iterations(synthref_root, tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_cfg(synthref_root, tmp_path, config=TINY_CONFIG, randomness=dict(seed=0), **{
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2, 'train_cfg.val_begin': 1,
        'default_hooks.checkpoint.interval': 100})
    runner = Runner.from_cfg(cfg)
    model = runner.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(('mm_encoder.', 'projector.')) for n in trainable)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    after = model.state_dict()
    sam2_keys = [k for k in before if k.startswith('sam2.')]
    assert sam2_keys and all(torch.equal(before[k], after[k]) for k in sam2_keys)
    assert not model.sam2.training  # frozen SAM-2 stays in eval mode
    scores = runner.message_hub.get_info('eval_metrics') or {}
    metrics = {k for k in runner.message_hub.log_scalars if k.startswith('val/')}
    assert any('cIoU' in k for k in list(scores) + list(metrics)), (scores, metrics)
    for prefix in ('mm_encoder.', 'projector.'):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_sam2_checkpoint_loaded_by_init_weights(tmp_path):
    """``model.sam2.checkpoint``: an official SAM-2 file, loaded strictly by sam2's loader when
    the model initialises (training from SAM-2's weights)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import MODELS
    register_all_modules()
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(TINY_CONFIG)).model
    torch.manual_seed(1)
    source = MODELS.build(cfg).sam2
    torch.save(dict(model=source.state_dict()), tmp_path / 'sam2_tiny.pt')
    torch.manual_seed(2)
    model = MODELS.build(dict(cfg, sam2=dict(cfg.sam2, checkpoint=str(tmp_path / 'sam2_tiny.pt'))))
    key = 'image_encoder.trunk.patch_embed.proj.weight'
    assert not torch.equal(model.sam2.state_dict()[key], source.state_dict()[key])
    model.init_weights()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.sam2.state_dict().items())


def test_single_mask_output(synthref_root):
    """``multimask_output=False`` (checkpoints before commit 9d00853): mask token 0."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import MODELS
    register_all_modules()
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(TINY_CONFIG)).model
    model = MODELS.build(dict(cfg, multimask_output=False)).eval()
    image_embed, high_res = model.sam2_features(torch.zeros(1, 3, 256, 256))
    assert image_embed.shape == (1, 256, 16, 16)
    assert [tuple(h.shape) for h in high_res] == [(1, 32, 64, 64), (1, 64, 32, 32)]
    with torch.no_grad():
        masks, iou = model.decode_image(image_embed, high_res, torch.randn(3, 1, 256))
    assert masks.shape == (3, 1, 64, 64) and iou.shape == (3, 1)


def test_tiny_amp_train(synthref_root, tmp_path):
    """bf16 AMP (mmevf's AnyDeviceAmpOptimWrapper, as ``tools/train.py --amp``) trains the tiny
    EVF-SAM2: the projector runs in bf16, the loss is finite and the step moves the projector.
    Resuming under AMP is the wrapper's, not the model's: tests/test_engine/test_amp.py resumes
    the tiny EVF-SAM."""
    from mmengine.runner import Runner
    cfg = tiny_cfg(synthref_root, tmp_path, config=TINY_CONFIG, **{'train_cfg.max_iters': 1})
    cfg.optim_wrapper.update(type='AnyDeviceAmpOptimWrapper', dtype='bfloat16',
                             loss_scale='dynamic')
    runner = Runner.from_cfg(cfg)
    seen = []
    runner.model.projector.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    before = {k: v.clone() for k, v in runner.model.projector.state_dict().items()}
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert seen == [torch.bfloat16] and len(losses) == 1 and torch.isfinite(torch.tensor(losses))
    after = runner.model.projector.state_dict()
    assert all(after[k].dtype == torch.float32 for k in after)  # fp32 master weights
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_tiny_zero2_dist_train(synthref_root, tmp_path):
    """The tiny ZeRO-2 config through ``tools/dist_train.sh`` (FlexibleRunner, DeepSpeed, bf16)
    in one CPU process: SAM-2's frozen parts and positional buffer stay fp32 under DeepSpeed's
    bf16, so the decoder's inputs are cast (EVFSAM2.decode_image). What needs two processes
    (the optimizer state split in two, resuming it) is the strategy's, not the model's:
    tests/test_tools/test_zero2_train.py runs the same strategy base on two processes."""
    import os

    from evf_sam2_helpers import PROJECT, ROOT, run_command

    from tests.conftest import free_port
    from tests.fixtures.tiny_runs import logged_losses as losses
    cfg = tiny_cfg(synthref_root, tmp_path / 'full',
                   config=PROJECT / 'configs' / 'evf-sam2-tiny_synthref_zero2.py',
                   **{'train_cfg.max_iters': 2})
    config = tmp_path / 'tiny_sam2_zero2.py'
    cfg.dump(str(config))

    def dist_train(work_dir, *extra):
        os.environ['PORT'] = str(free_port())
        try:
            return run_command(['bash', 'tools/dist_train.sh', str(config), '1', '--work-dir',
                                str(work_dir), *extra], ROOT)
        finally:
            del os.environ['PORT']

    log = dist_train(tmp_path / 'full')
    assert 'Distributed training: True' in log and 'GPU number: 1' in log
    shards = sorted(p.name for p in (tmp_path / 'full/iter_2.pth').iterdir())
    assert shards == ['bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt',
                      'mp_rank_00_model_states.pt']
    full = losses(tmp_path / 'full')
    assert sorted(full) == [1, 2] and all(loss > 0 for loss in full.values())
