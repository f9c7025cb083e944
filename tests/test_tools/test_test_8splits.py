"""tools/test.py evaluates the eight RefCOCO-family splits in one run through
configs/_base_/datasets/refcoco_8splits.py and prints one table row per split."""
import pickle
import shutil
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmevf.models  # noqa: F401
from mmevf.datasets.utils import load_refs_pickle
from mmevf.registry import MODELS
from tests.conftest import metric_table, run_tool

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ['refcoco_val', 'refcoco_testA', 'refcoco_testB', 'refcoco+_val', 'refcoco+_testA',
          'refcoco+_testB', 'refcocog_val', 'refcocog_test']


def fake_coco_layout(synthref_root: Path, out: Path) -> Path:
    """SynthRef re-laid out as data/coco: train2014/ + refcoco, refcoco+, refcocog."""
    shutil.copytree(synthref_root / 'images', out / 'train2014')
    refs = load_refs_pickle(str(synthref_root / 'synthref' / 'refs(unc).p'))
    for name, split_by in (('refcoco', 'unc'), ('refcoco+', 'unc'), ('refcocog', 'umd')):
        (out / name).mkdir()
        shutil.copy(synthref_root / 'synthref' / 'instances.json', out / name)
        if name == 'refcocog':  # umd splits: train / val / test
            refs = [dict(r, split='test' if r['split'].startswith('test') else r['split'])
                    for r in refs]
        with open(out / name / f'refs({split_by}).p', 'wb') as f:
            pickle.dump(refs, f)
    return out


def test_eight_splits_in_one_run(synthref_root, xlmr_tokenizer_dir, tmp_path, monkeypatch,
                                 capsys):
    data_root = fake_coco_layout(synthref_root, tmp_path / 'coco')
    cfg = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py'))
    splits_cfg = Config.fromfile(str(ROOT / 'configs/_base_/datasets/refcoco_8splits.py'))
    cfg.test_dataloader = splits_cfg.test_dataloader
    cfg.test_evaluator = splits_cfg.test_evaluator
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    for dataset in cfg.test_dataloader.dataset.datasets:
        dataset.data_root = str(data_root)
        dataset.indices = 3  # three images a split: the table's eight rows are the point
        for transform in dataset.pipeline:
            if transform.type == 'SAMResize':  # the tiny model's input sizes
                transform.update(sam_size=cfg.model.image_encoder.img_size,
                                 mm_size=cfg.model.mm_encoder.img_size)
            if transform.type == 'TokenizeText':
                transform.tokenizer = str(xlmr_tokenizer_dir)
    config = tmp_path / 'tiny_8splits.py'
    cfg.dump(str(config))

    init_default_scope('mmevf')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)

    rows = metric_table(run_tool('test', [
        config, checkpoint, '--work-dir', tmp_path / 'work', '--show-dir', 'vis',
        '--cfg-options', 'default_hooks.visualization.max_images=2'], monkeypatch, capsys))
    assert list(rows) == SPLITS
    for values in rows.values():
        assert list(values) == ['cIoU', 'gIoU', 'P@0.5', 'P@0.7', 'P@0.9']
        assert all(0.0 <= v <= 100.0 for v in values.values())
    # --show-dir: one overlay per expression of the first two images
    drawings = sorted((tmp_path / 'work').glob('*/vis/*.png'))
    first_val = load_refs_pickle(str(data_root / 'refcoco' / 'refs(unc).p'))
    assert len(drawings) >= 2 and all(p.stat().st_size > 0 for p in drawings)
    stems = {p.stem.rsplit('_', 1)[0] for p in drawings}
    assert len(stems) == 2
    for stem in stems:
        image_id = int(stem.split('_')[-1])
        expressions = sum(len(r['sentences']) for r in first_val
                          if r['image_id'] == image_id and r['split'] == 'val')
        assert len([p for p in drawings if p.stem.rsplit('_', 1)[0] == stem]) == expressions
