"""Training the tiny EVF-SAM2 on SynthRef with the maintainers' recipe (SAM-2 frozen, unchanged,
in eval mode; only BEiT-3 and the projector train): two iterations and a validation pass, bf16
AMP, the ZeRO-2 config and DeepSpeed's bf16 parameters; SAM-2's pretrained file."""
import torch
from evf_sam2_helpers import PROJECT, TINY_CONFIG, require_sam2

from tests.fixtures.tiny_runs import tiny_cfg

require_sam2()


def test_tiny_train_two_iterations(synthref_root, tmp_path):
    from mmengine.runner import Runner
    # one image a step, two images validated: what the recipe freezes and trains shows as well
    cfg = tiny_cfg(synthref_root, tmp_path, config=TINY_CONFIG, randomness=dict(seed=0), **{
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2, 'train_cfg.val_begin': 1,
        'default_hooks.checkpoint.interval': 100, 'train_dataloader.batch_size': 1,
        'val_dataloader.dataset.indices': 2})
    runner = Runner.from_cfg(cfg)
    model = runner.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(('mm_encoder.', 'projector.')) for n in trainable)
    model.init_weights()  # as runner.train() would: what changes below, training changed
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
    cfg = tiny_cfg(synthref_root, tmp_path, config=TINY_CONFIG, **{
        'train_cfg.max_iters': 1, 'train_dataloader.batch_size': 1})
    cfg.optim_wrapper.update(type='AnyDeviceAmpOptimWrapper', dtype='bfloat16',
                             loss_scale='dynamic')
    runner = Runner.from_cfg(cfg)
    seen = []
    runner.model.projector.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    runner.model.init_weights()  # as runner.train() would: what changes below, the step changed
    before = {k: v.clone() for k, v in runner.model.projector.state_dict().items()}
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert seen == [torch.bfloat16] and len(losses) == 1 and torch.isfinite(torch.tensor(losses))
    after = runner.model.projector.state_dict()
    assert all(after[k].dtype == torch.float32 for k in after)  # fp32 master weights
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_zero2_config_and_bf16_cast_as_deepspeed(synthref_root, tmp_path):
    """The tiny ZeRO-2 config resolves to FlexibleRunner + DeepSpeedStrategy (bf16, stage 2),
    and the model trains as DeepSpeed's bf16 leaves it (deepspeed's engine casts every
    parameter, SAM-2's frozen ones too, and keeps every buffer: the preprocessor's mean / std,
    SAM-2's positional-encoding matrix stay fp32): the model casts its inputs to its weights'
    dtype, EVFSAM2.decode_image its decoder's inputs. What needs a launch (tools/dist_train.sh,
    two processes, the optimizer state split in two, resuming it) is the strategy's, not the
    model's: tests/test_tools/test_zero2_train.py runs the same strategy base."""
    from mmengine._strategy import DeepSpeedStrategy
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import OPTIM_WRAPPERS, RUNNERS, STRATEGIES
    from mmengine.runner import FlexibleRunner

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import DATASETS, MODELS
    cfg = tiny_cfg(synthref_root, tmp_path, config=PROJECT / 'configs' /
                   'evf-sam2-tiny_synthref_zero2.py')
    assert RUNNERS.get(cfg.runner_type) is FlexibleRunner
    strategy = cfg.strategy
    assert STRATEGIES.get(strategy.type) is DeepSpeedStrategy
    assert strategy.bf16.enabled and not strategy.get('fp16', {}).get('enabled', False)
    assert strategy.zero_optimization.stage == 2
    assert 'data_types' not in strategy  # no buffer_dtype / keep_in_fp32_modules
    assert OPTIM_WRAPPERS.get(cfg.optim_wrapper.type).__name__ == 'DeepSpeedOptimWrapper'
    assert cfg.optim_wrapper.constructor == 'TrainableParamsOptimWrapperConstructor'
    assert cfg.model.type == 'EVFSAM2'

    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    buffer_dtypes = {n: b.dtype for n, b in model.named_buffers()}
    # deepspeed.runtime.engine.DeepSpeedEngine._cast_module_mixed_precision, bf16, no
    # buffer_dtype: the parameters only
    for param in model.parameters():
        param.data = param.data.to(torch.bfloat16)
    pe = 'sam2.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix'
    assert buffer_dtypes[pe] == torch.float32
    assert model.data_preprocessor.mean.dtype == torch.float32
    assert not model.sam2.training
    decoded = []
    model.sam2.sam_mask_decoder.register_forward_hook(
        lambda module, args, out: decoded.append(out[0].dtype))

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
    assert data['inputs']['img'].dtype == data['inputs']['mm_img'].dtype == torch.float32
    losses = model(**data, mode='loss')
    assert decoded and set(decoded) == {torch.bfloat16}  # SAM-2's decoder ran in bf16
    assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    sum(losses.values()).backward()
    for name, param in model.named_parameters():
        assert param.dtype == torch.bfloat16, name
        if name.startswith('sam2.'):
            assert param.grad is None, name  # frozen
    # every trainable parameter but BEiT-3's masked-image-modelling token (unused) has a grad
    missing = {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    assert missing == {'mm_encoder.vision_embed.mask_token'}, missing
    for prefix in ('mm_encoder.', 'projector.'):
        grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(prefix) and p.grad is not None]
        assert all(g.dtype == torch.bfloat16 and g.isfinite().all() for g in grads), prefix
        assert any(g.abs().sum() > 0 for g in grads), prefix
    assert {n: b.dtype for n, b in model.named_buffers()} == buffer_dtypes
