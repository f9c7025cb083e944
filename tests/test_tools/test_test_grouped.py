"""Test-time evaluation (what tools/test.py runs) groups the expressions of an image: SAM's
image encoder sees every image once, the multimodal encoder every expression once; with
``--show-dir`` the visualization hook draws one overlay per expression."""
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.runner import Runner

ROOT = Path(__file__).resolve().parents[2]


def test_evaluation_encodes_each_image_once(synthref_root, xlmr_tokenizer_dir, tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py'))
    cfg.test_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    datasets = cfg.test_dataloader.dataset.datasets[:1]  # the val split
    cfg.test_dataloader.dataset.datasets = datasets
    cfg.test_evaluator.metrics = cfg.test_evaluator.metrics[:1]
    cfg.test_evaluator.dataset_prefixes = cfg.test_evaluator.dataset_prefixes[:1]
    datasets[0].update(data_root=str(synthref_root), indices=5)  # 5 images: 3 batches
    for transform in datasets[0].pipeline:
        if transform.type == 'TokenizeText':
            transform.tokenizer = str(xlmr_tokenizer_dir)
    # what tools/test.py --show-dir vis does
    cfg.default_hooks.visualization.update(draw=True, test_out_dir='vis', max_images=2)
    cfg.work_dir = str(tmp_path / 'work')

    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    image_batches, expression_batches, texts = [], [], []
    model.image_encoder.register_forward_hook(
        lambda mod, args, out: image_batches.append(args[0].shape[0]))
    model.mm_encoder.register_forward_hook(
        lambda mod, args, out: expression_batches.append(args[1].shape[0]))
    model.register_forward_hook(
        lambda mod, args, kwargs, out: texts.extend(s.text for s in out), with_kwargs=True)
    metrics = runner.test()

    dataset = runner.test_dataloader.dataset
    num_images = len(dataset)
    num_expressions = sum(len(t) for t in texts)
    assert len(texts) == num_images and num_expressions > num_images
    assert 'synthref_val/cIoU' in metrics
    assert sum(image_batches) == num_images  # one image-encoder pass per image
    assert len(image_batches) == -(-num_images // 2)  # one call per batch of 2 images
    assert sum(expression_batches) == num_expressions  # every expression once
    assert len(expression_batches) == len(image_batches)

    drawings = sorted((tmp_path / 'work').glob('*/vis/*.png'))
    assert len(drawings) == len(texts[0]) + len(texts[1])
