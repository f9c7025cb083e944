"""`[semantic] {class}` prompts (issue 14) on the tiny SynthRef model with random weights:
through ``TextSegInferencer``, ``tools/infer.py`` and ``tools/test.py --show-dir`` over a
``SemanticReferDataset`` of the synthetic ADE20K twin."""
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
from mmengine.config import Config

from mmevf.apis import TextSegInferencer, resolve_config
from mmevf.utils.tokenizer import build_tokenizer
from tests.conftest import load_tool
from tests.test_apis.test_text_seg_inferencer import CONFIG
from tools.dataset_converters.make_synthetic_ade20k import make_synthetic_ade20k


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory) -> Path:
    """The synthetic ADE20K twin: 3 validation images of 48x64 with their label maps."""
    out = tmp_path_factory.mktemp('ade_synth')
    make_synthetic_ade20k(str(out), num_train=1, num_val=3, seed=0)
    return out / 'ADEChallengeData2016'


@pytest.fixture(scope='module')
def ade_image(ade_root) -> Path:
    return sorted((ade_root / 'images' / 'validation').glob('*.jpg'))[0]


def test_inferencer_semantic_prompt(tiny_checkpoint, xlmr_tokenizer_dir, ade_image):  # noqa: F811
    inferencer = TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                                   tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                                   show_progress=False)
    texts = ['[semantic] wall', 'the red circle']
    out = inferencer(str(ade_image), texts, return_datasamples=False)
    (pred,) = out['predictions']
    height, width = mmcv.imread(str(ade_image)).shape[:2]
    assert pred['masks'].shape == (2, height, width)
    assert pred['masks'].dtype == np.bool_
    assert pred['texts'] == texts

    # the prompt reaches the tokenizer with its "[semantic]" prefix
    samples = inferencer(str(ade_image), texts, return_datasamples=True)['predictions']
    tokenizer = build_tokenizer(str(xlmr_tokenizer_dir))
    semantic_ids = tokenizer('[semantic] wall')['input_ids']
    assert semantic_ids != tokenizer('wall')['input_ids']
    assert samples[0].text == texts
    assert samples[0].text_ids[0].tolist() == semantic_ids


def test_infer_tool_semantic_prompt(tiny_checkpoint, xlmr_tokenizer_dir, ade_image,  # noqa: F811
                                    tmp_path, capsys):
    out_dir = tmp_path / 'out'
    load_tool('infer').main([
        str(ade_image), '[semantic] sky', '--config', CONFIG, '--weights', str(tiny_checkpoint),
        '--tokenizer', str(xlmr_tokenizer_dir), '--out-dir', str(out_dir), '--device', 'cpu'
    ])
    original = mmcv.imread(str(ade_image), channel_order='rgb')
    overlay = mmcv.imread(str(out_dir / 'vis' / f'{ade_image.stem}_0.png'), channel_order='rgb')
    assert overlay.shape == original.shape
    mask = mmcv.imread(str(out_dir / 'masks' / f'{ade_image.stem}_0.png'), flag='unchanged')
    assert mask.shape == original.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert '"[semantic] sky"' in capsys.readouterr().out
    assert sorted(p.name for p in (out_dir / 'vis').glob('*.png')) == [f'{ade_image.stem}_0.png']


def test_test_tool_show_dir_semantic(tiny_checkpoint, xlmr_tokenizer_dir, ade_root,  # noqa: F811
                                     tmp_path, monkeypatch, capsys):
    base = resolve_config(CONFIG)
    pipeline = Config.fromfile(base).test_pipeline
    for transform in pipeline:
        if transform['type'] == 'TokenizeText':
            transform['tokenizer'] = str(xlmr_tokenizer_dir)
    dataset = dict(type='SemanticReferDataset', data_root=str(ade_root),
                   data_prefix=dict(img_path='images/validation',
                                    seg_map_path='annotations/validation'),
                   pipeline=[dict(t) for t in pipeline])
    config = tmp_path / 'semantic_test.py'
    config.write_text(
        f'_base_ = [{str(Path(base).resolve())!r}]\n'
        f'test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, '
        f'dataset=dict(_delete_=True, **{dataset!r}))\n'
        "test_evaluator = dict(_delete_=True, type='ReferSegMetric')\n")
    work_dir = tmp_path / 'work'
    monkeypatch.setattr(sys, 'argv', [
        'test.py', str(config), str(tiny_checkpoint), '--work-dir', str(work_dir),
        '--show-dir', 'vis'
    ])
    load_tool('test').main()
    printed = capsys.readouterr().out
    assert 'cIoU' in printed and 'gIoU' in printed  # the metric table

    # the expressions the dataset draws: every class present in each image
    from mmevf.registry import DATASETS
    from mmevf.engine.runner_setup import register_all_modules
    register_all_modules()
    ds = DATASETS.build(dict(dataset, pipeline=[]))
    expected = sorted(f'{Path(info["img_path"]).stem}_{i}.png'
                      for info in (ds.get_data_info(k) for k in range(len(ds)))
                      for i in range(len(info['text'])))
    assert len(ds) == 3 and all(
        t.startswith('[semantic] ') for k in range(len(ds)) for t in ds.get_data_info(k)['text'])
    drawings = sorted(p.name for p in work_dir.glob('*/vis/*.png'))
    assert drawings == expected
    images = {p.stem for p in (ade_root / 'images' / 'validation').glob('*.jpg')}
    assert {name.rsplit('_', 1)[0] for name in drawings} == images
