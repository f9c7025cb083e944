"""The RefCOCO-family dataset bases parse and point at the refer layout."""
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('name, ann, refs, test_split', [
    ('refcoco', 'refcoco/instances.json', 'refcoco/refs(unc).p', 'val'),
    ('refcoco+', 'refcoco+/instances.json', 'refcoco+/refs(unc).p', 'val'),
    ('refcocog', 'refcocog/instances.json', 'refcocog/refs(umd).p', 'test'),
    ('refclef', 'refclef/instances.json', 'refclef/refs(unc).p', 'val'),
])
def test_dataset_bases(name, ann, refs, test_split):
    cfg = Config.fromfile(str(ROOT / f'configs/_base_/datasets/{name}.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert (dataset.type, dataset.ann_file, dataset.split_file) == \
            ('ReferSegDataset', ann, refs)
    assert cfg.train_dataloader.dataset.text_mode == 'random'
    assert cfg.val_dataloader.dataset.text_mode == 'original'
    assert cfg.test_dataloader.dataset.split == test_split
    assert cfg.test_evaluator.prefix == f'{name}_{test_split}'
