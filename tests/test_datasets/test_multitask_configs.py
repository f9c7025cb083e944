"""The multitask configs (issue 14): dataset bases, the released 16:4:4:2:2:1 mix, the Tab. 6
rows, one test run over the RefCOCO-family splits + ADE20K val, and the paper model."""
import copy
from fractions import Fraction
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = Path(__file__).resolve().parents[2]
MULTITASK = ROOT / 'configs/evf_sam/evf-beit3l_sam-h_multitask.py'
TAB7 = {name: ROOT / f'configs/evf_sam/multitask/evf-beit3l_sam-h_{name}.py'
        for name in ('res-ade20k', 'res-mapillary', 'res-ade20k-mapillary')}
RES_ADE20K = TAB7['res-ade20k']
BASES = [ROOT / f'configs/_base_/datasets/{name}.py'
         for name in ('objects365', 'parts', 'ade20k_semantic', 'mapillary_semantic')]
REFCOCO_PREFIXES = ['refcoco_val', 'refcoco_testA', 'refcoco_testB', 'refcoco+_val',
                    'refcoco+_testA', 'refcoco+_testB', 'refcocog_val', 'refcocog_test']
# source type of each train source, in source_ratio order
MULTITASK_TYPES = ['ReferSegDataset'] * 4 + [
    'ObjectsInstanceDataset', 'SemanticReferDataset', 'CocoPartDataset', 'HumanParsingDataset',
    'CocoPartDataset']


def shares(ratio):
    total = sum(ratio)
    return [Fraction(r, total) for r in ratio]


@pytest.mark.parametrize('path', BASES + [MULTITASK, *TAB7.values()], ids=lambda p: p.stem)
def test_config_loads(path):
    cfg = Config.fromfile(str(path))
    loader = cfg.train_dataloader
    if loader.sampler.type == 'RatioSourceSampler':
        assert loader.dataset.type == 'ConcatDataset'
        assert len(loader.sampler.source_ratio) == len(loader.dataset.datasets)
        assert loader.sampler.batch_size == loader.batch_size
    # every source reads the refcoco.py pipelines
    base = Config.fromfile(str(ROOT / 'configs/_base_/datasets/refcoco.py'))
    datasets = loader.dataset.get('datasets', [loader.dataset])
    assert all(d.pipeline == base.train_pipeline for d in datasets)


def test_dataset_bases():
    ade = Config.fromfile(str(BASES[2]))
    assert ade.train_dataloader.dataset.type == 'SemanticReferDataset'
    assert (ade.train_dataloader.dataset.text_mode,
            ade.train_dataloader.dataset.max_expressions) == ('random', 3)
    val = ade.val_dataloader.dataset
    assert val.text_mode == 'original' and val.data_prefix.img_path == 'images/validation'
    # the paper's reading (cIoU / gIoU) and mmseg's mIoU over the 150 classes beside it
    assert ade.val_evaluator == [
        dict(type='ReferSegMetric', prefix='ade20k_val'),
        dict(type='SemanticIoUMetric', num_classes=150, iou_metrics=['mIoU'],
             prefix='ade20k_val')]
    assert [t for t in val.pipeline if t.type == 'mmdet.LoadAnnotations'][0].with_label
    parts = Config.fromfile(str(BASES[1]))
    assert [d.type for d in parts.train_dataloader.dataset.datasets] == \
        ['CocoPartDataset', 'HumanParsingDataset', 'CocoPartDataset']
    o365 = Config.fromfile(str(BASES[0]))
    assert o365.train_dataloader.dataset.type == 'ObjectsInstanceDataset'
    mapillary = Config.fromfile(str(BASES[3]))
    assert mapillary.train_dataloader.dataset.type == 'MapillaryReferDataset'
    assert mapillary.train_dataloader.dataset.data_prefix.seg_map_path == 'training/v2.0/labels'
    assert mapillary.val_dataloader.dataset.text_mode == 'original'
    assert mapillary.val_evaluator == [
        dict(type='ReferSegMetric', prefix='mapillary_val'),
        dict(type='SemanticIoUMetric', num_classes=124, iou_metrics=['mIoU'],
             prefix='mapillary_val')]


def test_multitask_mix_and_test_run():
    cfg = Config.fromfile(str(MULTITASK))
    loader = cfg.train_dataloader
    assert [d.type for d in loader.dataset.datasets] == MULTITASK_TYPES
    assert [d.ann_file.split('/')[0] for d in loader.dataset.datasets[:4]] == \
        ['refclef', 'refcoco', 'refcoco+', 'refcocog']
    ratio = loader.sampler.source_ratio
    refer = shares(ratio)
    # RefCOCO family summed : Objects365 : ADE20K : PartImageNet : HumanParsing : PASCAL-Part
    assert [sum(refer[:4])] + refer[4:] == shares([16, 4, 4, 2, 2, 1])
    assert len(set(ratio[:4])) == 1  # the four RefCOCO-family sources uniform
    assert loader.dataset.datasets[6].data_root.rstrip('/').endswith('PartImageNet')
    assert 'pascal_part' in loader.dataset.datasets[8].data_root
    # one test command: eight RefCOCO-family splits + ADE20K val, one prefix per dataset
    assert cfg.test_dataloader.dataset.type == 'MultiSplitDataset'
    prefixes = cfg.test_evaluator.dataset_prefixes
    assert prefixes == REFCOCO_PREFIXES + ['ade20k_val']
    assert len(cfg.test_evaluator.metrics) == len(cfg.test_dataloader.dataset.datasets) == \
        len(prefixes)
    assert cfg.test_dataloader.dataset.datasets[-1].type == 'SemanticReferDataset'
    assert cfg.test_dataloader.dataset.datasets[-1].text_mode == 'original'
    assert cfg.test_evaluator.metrics[-1] == dict(type='MetricGroup', metrics=[
        dict(type='ReferSegMetric'),
        dict(type='SemanticIoUMetric', num_classes=150, iou_metrics=['mIoU'])])
    # paper schedule and model as the RES config
    refcoco = Config.fromfile(str(ROOT / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'default_hooks'):
        assert cfg[key] == refcoco[key], key
    assert cfg.val_evaluator == refcoco.val_evaluator


@pytest.mark.parametrize('row,semantic,ratio', [
    ('res-ade20k', ['SemanticReferDataset'], [16, 4]),
    ('res-mapillary', ['MapillaryReferDataset'], [16, 4]),
    ('res-ade20k-mapillary', ['SemanticReferDataset', 'MapillaryReferDataset'], [16, 4, 4]),
])
def test_tab7_rows(row, semantic, ratio):
    cfg = Config.fromfile(str(TAB7[row]))
    loader = cfg.train_dataloader
    assert [d.type for d in loader.dataset.datasets] == ['ReferSegDataset'] * 4 + semantic
    refer = shares(loader.sampler.source_ratio)
    assert [sum(refer[:4])] + refer[4:] == shares(ratio)
    assert cfg.test_evaluator.dataset_prefixes[-1] == 'ade20k_val'
    multitask = Config.fromfile(str(MULTITASK))
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'test_dataloader'):
        assert cfg[key] == multitask[key], key


def _local(dataset, **kwargs):
    dataset = copy.deepcopy(dataset.to_dict() if hasattr(dataset, 'to_dict') else dataset)
    dataset.update(pipeline=[], **kwargs)
    return dataset


def test_multitask_sources_build_on_synthetic_data(tmp_path, synthref_root):
    """The concatenations build although the sources' metainfo differ, and the sampler and
    evaluator see one slice per source."""
    import numpy as np

    from mmevf.registry import DATA_SAMPLERS, DATASETS
    from tools.dataset_converters.make_synthetic_ade20k import make_synthetic_ade20k
    from tools.dataset_converters.make_synthetic_parts import make_synthetic_parts
    make_synthetic_ade20k(str(tmp_path / 'ade'), seed=0)
    make_synthetic_parts(str(tmp_path / 'parts'), seed=0)
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(MULTITASK))
    ade_root = str(tmp_path / 'ade/ADEChallengeData2016')
    refer = dict(data_root=str(synthref_root), data_prefix=dict(img_path='images/'),
                 ann_file='synthref/instances.json', split_file='synthref/refs(unc).p')
    coco_parts = dict(data_root=str(tmp_path / 'parts/parts'), ann_file='annotations/train.json',
                      data_prefix=dict(img_path='images/'))
    local = {
        'ReferSegDataset': refer,
        'ObjectsInstanceDataset': dict(data_root=str(synthref_root),
                                       ann_file='synthref/instances.json',
                                       data_prefix=dict(img_path='images/')),
        'SemanticReferDataset': dict(data_root=ade_root),
        'CocoPartDataset': coco_parts,
        'HumanParsingDataset': dict(data_root=str(tmp_path / 'parts/humanparsing')),
    }
    train = cfg.train_dataloader.dataset.to_dict()
    train['datasets'] = [_local(d, **local[d['type']]) for d in train['datasets']]
    dataset = DATASETS.build(train)
    assert len(dataset.datasets) == 9
    sampler = DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler.to_dict(), dataset=dataset,
                                       seed=0))
    it = iter(sampler)
    indices = [next(it) for _ in range(290)]
    sources = [int((idx >= np.asarray(dataset.cumulative_sizes)).sum()) for idx in indices]
    assert set(sources) == set(range(9))

    test = cfg.test_dataloader.dataset.to_dict()
    test['datasets'] = [
        # SynthRef has no 'test' split: every RefCOCO-family slot reads its val split
        _local(d, **(dict(refer, split='val') if d['type'] == 'ReferSegDataset' else
                     dict(data_root=ade_root)))
        for d in test['datasets']
    ]
    test_set = DATASETS.build(test)
    assert len(test_set.metainfo['cumulative_sizes']) == 9
    assert len(test_set.datasets[-1]) > 0


def test_multitask_params_equal_refcoco_model():
    from tools.analysis.count_params import count
    multitask = count(str(MULTITASK))
    refcoco = count(str(ROOT / 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'))
    assert multitask['total'] == refcoco['total'] > 1.2e9
    assert multitask['trainable'] == refcoco['trainable']
