"""SynthRef's multi-task twins (tools/dataset_converters/synthref/twins.py) read by the dataset
classes of the tiny multi-task config: masks equal hand decodes (PIL / pycocotools), part halves
lie above / below each other, the stick figures' left / right are the viewer's, and SynthRef's
tokenizer knows every prompt."""
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as mask_utils

from mmevf.registry import DATASETS
from tools.dataset_converters.synthref import TWIN_TEXTS, make_synthref_twins

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/evf_sam/evf-tiny_synthref_multitask.py'


@pytest.fixture(scope='module')
def twins(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('twins')
    counts = make_synthref_twins(str(out), num_images=16, seed=3)
    assert sum(counts['semantic'].values()) == 16 and counts['parts']['val'] > 0
    return out


def config_dataset(twins: Path, index: int, **kwargs):
    """The tiny multi-task config's test dataset ``index`` (3 semantic, 4 parts, 5 humans)
    on ``twins``, without pipeline."""
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(CONFIG)).test_dataloader.dataset.datasets[index].to_dict()
    cfg['data_root'] = str(twins / Path(cfg['data_root']).name)
    cfg.update(pipeline=[], **kwargs)
    return DATASETS.build(cfg)


def decoded(info: dict) -> dict:
    return {t: mask_utils.decode(i['mask']).astype(bool)
            for t, i in zip(info['text'], info['instances'])}


def test_deterministic(tmp_path):
    make_synthref_twins(str(tmp_path / 'a'), num_images=6, seed=5)
    make_synthref_twins(str(tmp_path / 'b'), num_images=6, seed=5)
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*.*'))
    assert len(files) > 3 * 6
    for f in files:
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' / f).read_bytes(), f


def test_semantic_twin_masks_equal_pil_decode(twins):
    dataset = config_dataset(twins, 3)
    pngs = sorted((twins / 'semantic/annotations/validation').glob('*.png'))
    assert len(dataset) == len(pngs) > 0
    for k, png in enumerate(pngs):
        raw = np.array(Image.open(png))
        expected = {f'[semantic] {("circle", "square", "triangle")[v - 1]}': raw == v
                    for v in np.unique(raw) if v}
        got = decoded(dataset.get_data_info(k))
        assert list(got) == list(expected)
        for text in expected:
            np.testing.assert_array_equal(got[text], expected[text])


def test_part_twin_halves(twins):
    dataset = config_dataset(twins, 4)
    coco = json.loads((twins / 'parts/annotations/val/val.json').read_text())
    names = {c['id']: c['name'] for c in coco['categories']}
    assert set(names.values()) == {f'{s}:{h}' for s in ('circle', 'square', 'triangle')
                                   for h in ('top half', 'bottom half')}
    for k in range(len(dataset)):
        info = dataset.get_data_info(k)
        image_id = next(i['id'] for i in coco['images']
                        if Path(info['img_path']).name == i['file_name'])
        anns = [a for a in coco['annotations'] if a['image_id'] == image_id]
        expected = {}
        for a in anns:  # instances of one category merged into one mask
            text = '[semantic] ' + names[a['category_id']].replace(':', ' ')
            expected[text] = expected.get(text, False) | mask_utils.decode(
                dict(a['segmentation'], counts=a['segmentation']['counts'].encode()))
        got = decoded(info)
        assert set(got) == set(expected)
        for text in expected:
            np.testing.assert_array_equal(got[text], expected[text].astype(bool))
        # per object (one top and one bottom annotation in a row), top rows above bottom rows
        for top, bottom in zip(anns[::2], anns[1::2]):
            assert names[top['category_id']].endswith('top half')
            assert top['bbox'][1] + top['bbox'][3] <= bottom['bbox'][1] + 1


def test_human_twin_left_is_viewers_left(twins):
    dataset = config_dataset(twins, 5)
    assert len(dataset) > 0
    singles = 0
    for k in range(len(dataset)):
        info = dataset.get_data_info(k)
        raw = np.array(Image.open(info['seg_map_path']))
        got = decoded(info)
        assert set(got) == {'[semantic] ' + n for n in (
            'hat', 'upper clothes', 'right shoe', 'left shoe', 'face', 'right leg', 'left leg',
            'right arm', 'left arm')}
        np.testing.assert_array_equal(got['[semantic] left arm'], raw == 15)  # ATR's table
        centre_x = {t: np.nonzero(m)[1].mean() for t, m in got.items()}
        if np.ptp(np.nonzero(got["[semantic] face"])[1]) < raw.shape[1] / 4:  # one figure
            singles += 1
            for part in ('arm', 'leg', 'shoe'):
                assert centre_x[f'[semantic] left {part}'] < centre_x[f'[semantic] right {part}']
    assert singles > 0


def test_tokenizer_knows_every_twin_prompt(synthref_root):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(
        model_file=str(synthref_root / 'tokenizer/sentencepiece.bpe.model'))
    for text in TWIN_TEXTS:
        assert sp.unk_id() not in sp.encode(text), text
        assert sp.decode(sp.encode(text)) == text
