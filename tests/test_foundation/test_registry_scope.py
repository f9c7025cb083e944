"""Configs with default_scope='mmevf' build mmdet datasets, their pipelines and mmevf modules
each from the right registry scope."""
from pathlib import Path

import pytest
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.registry import DATASETS, METRICS, MODELS, DefaultScope, init_default_scope

import mmevf  # noqa: F401
from mmevf.registry import TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]


@TRANSFORMS.register_module(force=True)
class UpperCaseText(BaseTransform):
    """A stand-in mmevf transform placed inside an mmdet pipeline."""

    def transform(self, results: dict) -> dict:
        results['text'] = [text.upper() for text in results['text']]
        return results


MMEVF_PIPELINE = """[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
    dict(type='mmevf.UpperCaseText'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'gt_masks', 'text')),
]"""


def write_config(tmp_path: Path, body: str) -> Config:
    path = tmp_path / 'cfg.py'
    path.write_text(body)
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    return cfg


def check_dataset(cfg_dataset) -> None:
    dataset = DATASETS.build(cfg_dataset)
    kinds = {type(t).__name__: type(t).__module__ for t in dataset.pipeline.transforms}
    assert type(dataset).__module__.startswith('mmdet.datasets')
    assert kinds['Resize'].startswith('mmdet.'), kinds  # mmcv's Resize would ignore masks
    assert kinds['LoadAnnotations'].startswith('mmdet.'), kinds
    assert kinds['PackDetInputs'].startswith('mmdet.'), kinds
    assert kinds['UpperCaseText'] == __name__, kinds
    sample = dataset[0]
    # text_mode='original': every sentence of every ref, one mask each, at the original size.
    assert sample['data_samples'].text == ['LEFT RED BOX', 'SMALL BOX', 'RIGHT BLUE BOX']
    assert sample['data_samples'].gt_masks.masks.shape == (3, 48, 64)
    assert tuple(sample['inputs'].shape) == (3, 96, 128)


def test_mmdet_base_config_keeps_mmdet_scope(tmp_path, tiny_refcoco):
    cfg = write_config(tmp_path, f"""
_base_ = ['{ROOT}/configs/_base_/default_runtime.py', 'mmdet::_base_/datasets/refcoco.py']
model = dict(type='mmevf.ToyRegressor')
custom_imports = dict(imports=['mmevf', 'tests.fixtures.toy_regression'])
val_dataloader = dict(dataset=dict(
    data_root='{tiny_refcoco}/', text_mode='original', pipeline={MMEVF_PIPELINE}))
""")
    assert cfg.default_scope == 'mmevf'
    assert cfg.val_dataloader.dataset._scope_ == 'mmdet'
    check_dataset(cfg.val_dataloader.dataset)
    metric = METRICS.build(cfg.val_evaluator)
    assert type(metric).__module__.startswith('mmdet.evaluation')
    with DefaultScope.overwrite_default_scope('mmevf'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ToyRegressor'


def test_explicit_scope_builds_pipeline_in_mmdet(tmp_path, tiny_refcoco):
    cfg = write_config(tmp_path, f"""
_base_ = ['{ROOT}/configs/_base_/default_runtime.py']
dataset = dict(type='RefCocoDataset', _scope_='mmdet', data_root='{tiny_refcoco}/',
    data_prefix=dict(img_path='train2014/'), ann_file='refcoco/instances.json',
    split_file='refcoco/refs(unc).p', split='val', text_mode='original',
    pipeline={MMEVF_PIPELINE})
""")
    check_dataset(cfg.dataset)


def test_prefix_without_scope_is_the_known_trap(tmp_path, tiny_refcoco):
    """`mmdet.RefCocoDataset` without `_scope_` builds its pipeline in scope mmevf, where
    `LoadAnnotations` is mmcv's class (no masks): this is why configs set `_scope_`."""
    cfg = write_config(tmp_path, f"""
_base_ = ['{ROOT}/configs/_base_/default_runtime.py']
dataset = dict(type='mmdet.RefCocoDataset', data_root='{tiny_refcoco}/',
    data_prefix=dict(img_path='train2014/'), ann_file='refcoco/instances.json',
    split_file='refcoco/refs(unc).p', split='val', pipeline={MMEVF_PIPELINE})
""")
    with pytest.raises(TypeError, match='with_mask'):
        DATASETS.build(cfg.dataset)
