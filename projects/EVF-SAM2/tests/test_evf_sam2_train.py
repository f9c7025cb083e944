"""Two iterations of the tiny EVF-SAM2 config on SynthRef with the maintainers' recipe: SAM-2
frozen (unchanged, in eval mode), only BEiT-3 and the projector train; then a validation pass."""
import torch
from evf_sam2_helpers import TINY_CONFIG, require_sam2

require_sam2()


def test_tiny_train_two_iterations(synthref_root, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(str(TINY_CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.data_root = str(synthref_root)
        for transform in loader.dataset.pipeline:
            if transform.type == 'TokenizeText':
                transform.tokenizer = str(synthref_root / 'tokenizer')
    cfg.merge_from_dict({
        'work_dir': str(tmp_path), 'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'train_cfg.val_begin': 1, 'default_hooks.checkpoint.interval': 100,
        'default_hooks.checkpoint.save_best': None, 'default_hooks.logger.interval': 1,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=False)]})
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
