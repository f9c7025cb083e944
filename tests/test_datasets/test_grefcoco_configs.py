"""The gRefCOCO / SynthRef-G configs: the tiny EVF-SAM reads a generated SynthRef-G (a
no-target expression reaches the model), evaluates each test split with GReferSegMetric and
trains with its NoTargetHead; the paper-scale EVF-SAM and L-DIT_B configs are their RefCOCO
recipes on gRefCOCO with the head (read from the Config, no data or weights needed)."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner

from mmevf.engine.runner_setup import register_all_modules
from mmevf.evaluation.metrics import GReferSegMetric
from mmevf.registry import DATASETS, EVALUATOR, MODELS
from tests.fixtures.tiny_runs import tiny_cfg
from tools.dataset_converters.synthref.grefer import make_synthref_g

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'configs/evf_sam/evf-tiny_synthref-g.py'
TINY_NOHEAD = ROOT / 'configs/evf_sam/evf-tiny-nohead_synthref-g.py'
PAPER = {
    # gRefCOCO config: (its RefCOCO twin, expressions per image and read in training)
    'configs/evf_sam/evf-beit3l_sam-h_grefcoco.py': ('configs/evf_sam/evf-beit3l_sam-h_refcoco.py', 3),
    'configs/dit/l-dit_sam-b_bert-base_grefcoco.py': ('configs/dit/l-dit_sam-b_bert-base_refcoco.py', 1),
}
SPLITS = ['val', 'testA', 'testB']


@pytest.fixture(scope='module')
def synthref_g(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('synthref_g')
    counts = make_synthref_g(str(root), num_images=10, seed=0)
    assert all(c['images'] for c in counts.values()) and counts['train']['none']
    return root


def on(root: Path, config: Path = TINY) -> Config:
    """``config`` with every dataset and tokenizer on ``root``, no worker processes."""
    cfg = Config.fromfile(str(config))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        for dataset in loader.dataset.get('datasets', [loader.dataset]):
            dataset.data_root = str(root)
            for transform in dataset.pipeline:
                if transform.type == 'TokenizeText':
                    transform.tokenizer = str(root / 'tokenizer')
    return cfg


def test_tiny_config_reads_synthref_g(synthref_g):
    register_all_modules()
    cfg = on(synthref_g)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    assert type(train).__name__ == 'GReferSegDataset' and len(train) == 7
    # one sentence per ref, every ref: an image with a no-target ref packs a True flag
    flags = [train[i]['data_samples'].no_target for i in range(len(train))]
    assert all(len(f) == len(train[i]['data_samples'].text) for i, f in enumerate(flags))
    assert any(any(f) for f in flags) and not all(all(f) for f in flags)

    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert [d.split for d in test.datasets] == SPLITS
    assert [d.text_mode for d in test.datasets] == ['original'] * 3
    assert test.metainfo['cumulative_sizes'] == [1, 2, 3]  # one image per split
    evaluator = EVALUATOR.build(cfg.test_evaluator)
    assert evaluator.dataset_prefixes == [f'synthref_g_{s}' for s in SPLITS]
    assert [type(m).__name__ for m in evaluator.metrics] == ['GReferSegMetric'] * 3
    val = Evaluator(cfg.val_evaluator)
    assert [(type(m), m.prefix) for m in val.metrics] == [(GReferSegMetric, 'synthref_g_val')]
    assert cfg.default_hooks.checkpoint.save_best == 'synthref_g_val/gIoU'


def test_tiny_configs_same_but_the_head():
    """With the head and without: the same tiny EVF-SAM (the embedded default's), data and
    budget; the model differs by the head alone."""
    register_all_modules()
    head, nohead, default = (Config.fromfile(str(c)) for c in
                             (TINY, TINY_NOHEAD, ROOT / 'configs/evf_sam/evf-tiny_synthref.py'))
    assert head.model.no_target_head == dict(type='NoTargetHead')
    assert nohead.model.no_target_head is None
    for cfg in (head, nohead):
        assert {k: v for k, v in cfg.model.items() if k != 'no_target_head'} == default.model
        assert (cfg.train_cfg, cfg.optim_wrapper, cfg.param_scheduler) == \
            (default.train_cfg, default.optim_wrapper, default.param_scheduler)
        assert cfg.train_dataloader.batch_size == default.train_dataloader.batch_size
    assert head.train_dataloader == nohead.train_dataloader
    assert head.test_evaluator == nohead.test_evaluator
    with_head, without = MODELS.build(head.model), MODELS.build(nohead.model)
    assert type(with_head.no_target_head).__name__ == 'NoTargetHead'
    assert without.no_target_head is None
    extra = sum(p.numel() for p in with_head.no_target_head.parameters())
    assert sum(p.numel() for p in with_head.parameters()) == \
        sum(p.numel() for p in without.parameters()) + extra
    assert all(p.requires_grad for p in with_head.no_target_head.parameters())


@pytest.mark.parametrize('config', list(PAPER))
def test_paper_configs(config):
    """The RefCOCO twin's model (plus the head), schedule and pipelines, on gRefCOCO: train
    split random sentences, val / testA / testB in one test run scored by GReferSegMetric."""
    twin_path, expressions = PAPER[config]
    cfg, twin = Config.fromfile(str(ROOT / config)), Config.fromfile(str(ROOT / twin_path))
    assert cfg.model.no_target_head == dict(type='NoTargetHead')
    assert {k: v for k, v in cfg.model.items() if k != 'no_target_head'} == twin.model
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'find_unused_parameters',
                'train_pipeline', 'test_pipeline'):
        assert cfg[key] == twin[key], key
    assert cfg.train_dataloader.batch_size == twin.train_dataloader.batch_size == 16

    fields = dict(type='GReferSegDataset', data_root='data/',
                  data_prefix=dict(img_path='images/train2014/'),
                  ann_file='grefcoco/instances.json', split_file='grefcoco/grefs(unc).json')
    train = cfg.train_dataloader.dataset
    assert {k: train[k] for k in fields} == fields
    assert (train.split, train.text_mode, train.max_expressions) == ('train', 'random', expressions)
    assert train.pipeline == cfg.train_pipeline
    val = cfg.val_dataloader.dataset
    assert {k: val[k] for k in fields} == fields and (val.split, val.text_mode) == ('val', 'original')
    test = cfg.test_dataloader.dataset
    assert test.type == 'MultiSplitDataset'
    for split, dataset in zip(SPLITS, test.datasets, strict=True):
        assert {k: dataset[k] for k in fields} == fields
        assert (dataset.split, dataset.text_mode) == (split, 'original')
        assert dataset.pipeline == cfg.test_pipeline
    assert cfg.val_evaluator == dict(type='GReferSegMetric', prefix='grefcoco_val')
    assert cfg.test_evaluator == dict(
        type='mmdet.MultiDatasetsEvaluator', metrics=[dict(type='GReferSegMetric')] * 3,
        dataset_prefixes=[f'grefcoco_{s}' for s in SPLITS])
    assert cfg.default_hooks.checkpoint.save_best == 'grefcoco_val/gIoU'


def test_tiny_config_trains_and_validates(synthref_g, tmp_path):
    """tools/train.py's runner on SynthRef-G: 2 iterations with loss_no_target, then one
    validation whose keys are GReferSegMetric's."""
    register_all_modules()
    cfg = tiny_cfg(synthref_g, tmp_path, TINY, **{'train_cfg.max_iters': 2})
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert len(runner.message_hub.get_scalar('train/loss_no_target').data[0]) == 2
    metrics = runner.val_loop.run()
    assert {'synthref_g_val/gIoU', 'synthref_g_val/cIoU', 'synthref_g_val/N-acc'} <= set(metrics)
