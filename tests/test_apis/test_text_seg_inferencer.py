"""TextSegInferencer on the tiny SynthRef model with random weights: original-size masks for
several images and expressions, one image-encoder pass per image, overlays and mask files,
bf16, and errors that name the bad input."""
import json
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmevf.apis import TextSegInferencer, resolve_config
from mmevf.utils.tokenizer import build_tokenizer
from mmevf.visualization.refer_seg_visualizer import NO_TARGET_COLOR
from tests.conftest import NO_TARGET_PROBABILITY, force_no_target

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'evf-tiny_synthref'


@pytest.fixture(scope='module')
def inferencer(tiny_checkpoint, xlmr_tokenizer_dir) -> TextSegInferencer:
    return TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                             tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                             show_progress=False)


@pytest.fixture(scope='module')
def images(synthref_root) -> list:
    """Three SynthRef images of two different sizes."""
    paths = sorted((synthref_root / 'images').glob('*.jpg'))
    by_shape = {}
    for path in paths:
        by_shape.setdefault(mmcv.imread(str(path)).shape, []).append(str(path))
    assert len(by_shape) >= 2
    first, second = list(by_shape.values())[:2]
    return [first[0], second[0], first[1]]


class EncoderCalls:
    """Counts forward calls of a module and the batch size of each."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.batches = []
        self.handle = module.register_forward_hook(
            lambda mod, args, out: self.batches.append(args[0].shape[0]))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


TEXTS = [['red circle', 'the blue square', '[semantic] sky', 'triangle', 'a', 'b', 'c'],
         'the larger triangle on the right', ['man in red shirt', 'leftmost zebra']]


def test_masks_at_original_size(inferencer, images):
    array = mmcv.imread(images[1])[:50, :70].copy()  # an array input of another size
    out = inferencer(images + [array], TEXTS + [['small green square']])
    preds = out['predictions']
    assert len(preds) == 4 and out['visualization'] is None
    for pred, image, texts in zip(preds, images + [array], TEXTS + [['small green square']]):
        texts = [texts] if isinstance(texts, str) else texts
        height, width = (mmcv.imread(image) if isinstance(image, str) else image).shape[:2]
        assert pred['masks'].shape == (len(texts), height, width)
        assert pred['masks'].dtype == np.bool_
        assert pred['texts'] == texts and len(pred['scores']) == len(texts)
        assert all(isinstance(s, float) for s in pred['scores'])
    assert preds[0]['img_path'] == images[0] and preds[3]['img_path'] is None

    # one image, one expression: str inputs are accepted as they are
    single = inferencer(images[0], 'red circle')['predictions']
    assert len(single) == 1 and single[0]['masks'].shape[0] == 1
    # an image's masks do not depend on the other expressions it is asked with
    np.testing.assert_array_equal(single[0]['masks'][0], preds[0]['masks'][0])


def test_semantic_prompt_untouched(inferencer, images, xlmr_tokenizer_dir):
    samples = inferencer(images[0], ['[semantic] sky', 'red circle'],
                         return_datasamples=True)['predictions']
    tokenizer = build_tokenizer(str(xlmr_tokenizer_dir))
    assert samples[0].text == ['[semantic] sky', 'red circle']
    assert samples[0].text_ids[0].tolist() == tokenizer('[semantic] sky')['input_ids']


@pytest.mark.parametrize('batch_size', [1, 2])
def test_image_encoder_runs_once_per_image(inferencer, images, batch_size):
    model = inferencer.model
    with EncoderCalls(model.image_encoder) as image_calls, \
            EncoderCalls(model.mm_encoder) as mm_calls:
        inferencer(images, TEXTS, batch_size=batch_size)
    num_expressions = 7 + 1 + 2
    assert sum(image_calls.batches) == len(images)  # every image encoded exactly once
    assert len(image_calls.batches) == -(-len(images) // batch_size)  # one pass per batch
    assert sum(mm_calls.batches) == num_expressions  # and every expression once
    assert len(mm_calls.batches) == len(image_calls.batches)


def test_overlays_and_masks_written(inferencer, images, tmp_path):
    out = inferencer(images[:2], [['red circle', 'blue square'], 'triangle'],
                     return_vis=True, out_dir=str(tmp_path))
    drawings = out['visualization']
    assert [len(d) for d in drawings] == [2, 1]
    for pred, image, drawn in zip(out['predictions'], images, drawings):
        stem = Path(image).stem
        original = mmcv.imread(image, channel_order='rgb')
        for i, text in enumerate(pred['texts']):
            overlay = mmcv.imread(str(tmp_path / 'vis' / f'{stem}_{i}.png'), channel_order='rgb')
            assert overlay.shape == original.shape
            np.testing.assert_array_equal(overlay, drawn[i])
            # the expression is written in the top-left corner
            assert np.abs(overlay[:12, :40].astype(int) - original[:12, :40]).mean() > 5
            mask = mmcv.imread(str(tmp_path / 'masks' / f'{stem}_{i}.png'), flag='unchanged')
            assert set(np.unique(mask)) <= {0, 255}
            np.testing.assert_array_equal(mask > 0, pred['masks'][i])
        record = json.loads((tmp_path / 'preds' / f'{stem}.json').read_text())
        assert record['texts'] == pred['texts'] and record['scores'] == pred['scores']


# a prediction dict and its JSON record, for a model without a no-target head
HEADLESS_KEYS = {'img_path', 'stem', 'texts', 'masks', 'scores', 'points', 'boxes'}
HEADLESS_RECORD_KEYS = {'img_path', 'texts', 'scores', 'mask_files', 'points', 'boxes'}


def test_headless_model_unchanged(inferencer, images, tmp_path):
    """A model without a no-target head: the keys of before, nothing about "no target"."""
    out = inferencer(images[0], ['red circle', 'blue square'], out_dir=str(tmp_path))
    assert set(out['predictions'][0]) == HEADLESS_KEYS
    record = json.loads((tmp_path / 'preds' / f'{Path(images[0]).stem}.json').read_text())
    assert set(record) == HEADLESS_RECORD_KEYS
    sample = inferencer(images[0], 'red circle', return_datasamples=True)['predictions'][0]
    assert set(sample.pred_instances.keys()) == {'masks', 'scores'}


def test_no_target_reported(no_target_model, xlmr_tokenizer_dir, inferencer, images, tmp_path,
                            monkeypatch):
    """With a no-target head, each expression says whether it names nothing and with what
    probability; a no-target expression's mask is empty (file too) and its drawing carries a
    "no target (score 0.93)" label instead of a mask; the other's mask, score and drawing are the
    headless model's (same weights)."""
    config, weights = no_target_model
    model = TextSegInferencer(str(config), weights=str(weights),
                              tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                              show_progress=False)
    force_no_target(monkeypatch, [True, False])
    texts = ['red circle', 'blue square']
    labels = []
    draw_texts = model.visualizer.draw_texts
    monkeypatch.setattr(model.visualizer, 'draw_texts',
                        lambda texts, *a, **k: (labels.append(texts), draw_texts(texts, *a, **k)))
    out = model(images[0], texts, return_vis=True, out_dir=str(tmp_path))
    reference = inferencer(images[0], texts, return_vis=True)
    pred, ref = out['predictions'][0], reference['predictions'][0]

    assert set(pred) == HEADLESS_KEYS | {'no_target', 'no_target_scores'}
    assert pred['no_target'] == [True, False]
    assert all(type(flag) is bool for flag in pred['no_target'])
    assert pred['no_target_scores'] == pytest.approx(
        [NO_TARGET_PROBABILITY, 1 - NO_TARGET_PROBABILITY], abs=1e-5)
    assert ref['masks'][0].any() and not pred['masks'][0].any()  # emptied by the head
    np.testing.assert_array_equal(pred['masks'][1], ref['masks'][1])
    assert pred['scores'] == pytest.approx(ref['scores'], abs=1e-6)

    stem = Path(images[0]).stem
    empty = mmcv.imread(str(tmp_path / 'masks' / f'{stem}_0.png'), flag='unchanged')
    assert empty.shape == pred['masks'].shape[1:] and not empty.any()
    record = json.loads((tmp_path / 'preds' / f'{stem}.json').read_text())
    assert set(record) == HEADLESS_RECORD_KEYS | {'no_target', 'no_target_scores'}
    assert record['no_target'] == [True, False]
    assert record['no_target_scores'] == pred['no_target_scores']

    drawn, ref_drawn = out['visualization'][0], reference['visualization'][0]
    assert 'no target (score 0.93)' in labels and sum('no target' in str(t) for t in labels) == 1
    height, width = pred['masks'].shape[1:]
    label = np.all(drawn[0] == NO_TARGET_COLOR, axis=-1)  # its opaque box, mid-picture
    ys, xs = np.nonzero(label)
    assert label.sum() > 200 and not np.all(ref_drawn[0] == NO_TARGET_COLOR, axis=-1).any()
    assert abs(ys.mean() - height / 2) < height / 8 and abs(xs.mean() - width / 2) < width / 8
    written = mmcv.imread(str(tmp_path / 'vis' / f'{stem}_0.png'), channel_order='rgb')
    np.testing.assert_array_equal(written, drawn[0])
    np.testing.assert_array_equal(drawn[1], ref_drawn[1])


def test_bf16(tiny_checkpoint, xlmr_tokenizer_dir, images):
    inferencer = TextSegInferencer(CONFIG, weights=str(tiny_checkpoint), dtype='bf16',
                                   tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                                   show_progress=False)
    assert next(inferencer.model.parameters()).dtype == torch.bfloat16
    pred = inferencer(images[1], ['red circle', 'blue square'])['predictions'][0]
    assert pred['masks'].shape == (2, ) + mmcv.imread(images[1]).shape[:2]
    assert all(np.isfinite(pred['scores']))


def test_input_errors(inferencer, images, tmp_path):
    missing = str(tmp_path / 'nowhere.jpg')
    with pytest.raises(FileNotFoundError, match='nowhere.jpg'):
        inferencer([images[0], missing], 'red circle')
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8 this is not a jpeg')
    with pytest.raises(ValueError, match='cannot decode image .*corrupt.jpg'):
        inferencer(str(corrupt), 'red circle')
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='empty.png'):
        inferencer(str(empty), 'red circle')
    with pytest.raises(ValueError, match=r'empty expression #1 for .*' + Path(images[0]).name):
        inferencer(images[0], ['red circle', '  '])
    with pytest.raises(ValueError, match=r'empty expression #0 for image #1 \(array\)'):
        inferencer([images[0], np.zeros((8, 8, 3), np.uint8)], ['red circle', ''])
    with pytest.raises(ValueError, match='2 images but 3 text entries'):
        inferencer(images[:2], ['a', 'b', 'c'])
    with pytest.raises(ValueError, match='uint8'):
        inferencer(np.zeros((8, 8, 3), np.float32), 'red circle')
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        inferencer(np.zeros((8, 8, 2), np.uint8), 'red circle')


def test_checkpoint_mismatch_names_keys_and_shapes(tiny_checkpoint, xlmr_tokenizer_dir,
                                                   tmp_path):
    state = torch.load(tiny_checkpoint, weights_only=True)['state_dict']
    key = 'projector.mlp.0.weight'
    wrong_shape = dict(state, **{key: torch.zeros(3, 5)})
    torch.save(dict(state_dict=wrong_shape), tmp_path / 'shape.pth')
    with pytest.raises(ValueError, match=rf'{key}: file \(3, 5\) vs model \(\d+, \d+\)'):
        TextSegInferencer(CONFIG, weights=str(tmp_path / 'shape.pth'), device='cpu',
                          tokenizer=str(xlmr_tokenizer_dir))
    dropped = {k: v for k, v in state.items() if not k.startswith('prompt_head.')}
    dropped['extra.weight'] = torch.zeros(1)
    torch.save(dropped, tmp_path / 'keys.pth')
    with pytest.raises(ValueError, match=r'(?s)does not match .*evf-tiny_synthref.py.*'
                       r'missing keys \(\d+\): prompt_head\..*unexpected keys \(1\): extra'):
        TextSegInferencer(CONFIG, weights=str(tmp_path / 'keys.pth'), device='cpu',
                          tokenizer=str(xlmr_tokenizer_dir))
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        TextSegInferencer(CONFIG, weights=str(tmp_path / 'no_such.pth'))
    # a download cut short: the error names the file (torch alone says "failed finding
    # central directory" and no path)
    (tmp_path / 'cut.pth').write_bytes(tiny_checkpoint.read_bytes()[:100_000])
    with pytest.raises(ValueError, match=f'cannot read checkpoint {tmp_path}/cut.pth: .*'
                                         f'truncated'):
        TextSegInferencer(CONFIG, weights=str(tmp_path / 'cut.pth'), device='cpu',
                          tokenizer=str(xlmr_tokenizer_dir))


def test_config_names(tmp_path):
    assert resolve_config(CONFIG) == str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')
    assert resolve_config(CONFIG + '.py').endswith('evf_sam/evf-tiny_synthref.py')
    with pytest.raises(FileNotFoundError, match='did you mean evf-tiny_synthref'):
        resolve_config('evf-tiny_synthrf')


@pytest.mark.filterwarnings('ignore:no weights given')
def test_other_segmentors_work_unchanged(synthref_root, images):
    """Nothing in the inferencer is EVF-SAM specific: DIT (BERT tokenizer, text inside SAM's
    image encoder) takes the same inputs and gives the same outputs."""
    config = resolve_config('l-dit-tiny_synthref')  # shipped: a missing one fails here
    assert config == str(ROOT / 'configs/dit/l-dit-tiny_synthref.py')
    inferencer = TextSegInferencer(config, tokenizer=str(synthref_root / 'bert_tokenizer'),
                                   device='cpu', show_progress=False)
    preds = inferencer(images[:2], [['red circle', 'blue square'], 'triangle'])['predictions']
    for pred, image, count in zip(preds, images, (2, 1)):
        assert pred['masks'].shape == (count, ) + mmcv.imread(image).shape[:2]


def test_folder_input(inferencer, images, tmp_path):
    """A folder stands for its images (other files skipped); each gets every expression."""
    for image in images[:2]:
        (tmp_path / Path(image).name).write_bytes(Path(image).read_bytes())
    (tmp_path / 'notes.txt').write_text('not an image')
    preds = inferencer(str(tmp_path), ['red circle', 'blue square'])['predictions']
    assert [Path(p['img_path']).name for p in preds] == sorted(Path(i).name for i in images[:2])
    assert all(p['masks'].shape[0] == 2 for p in preds)
    (tmp_path / 'sub').mkdir()
    with pytest.raises(ValueError, match='no image in .*sub'):
        inferencer(str(tmp_path / 'sub'), 'x')


def test_pipeline_and_drawing_follow_det_inferencer(inferencer, images, monkeypatch):
    """The test pipeline as an mmcv ``Compose`` whose loading step is mmdet's
    ``InferencerLoader`` (no ground-truth loading); pictures come from the visualizer's
    ``add_datasample``, one expression per call."""
    from mmcv.transforms import Compose
    from mmdet.datasets.transforms import InferencerLoader
    pipeline = inferencer.pipeline
    assert isinstance(pipeline, Compose) and isinstance(pipeline.transforms[0], InferencerLoader)
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names.count('InferencerLoader') == 1 and 'LoadAnnotations' not in names
    assert 'TokenizeText' in names and names[-1] == 'PackReferInputs'

    calls = []
    add_datasample = inferencer.visualizer.add_datasample

    def spy(name, image, data_sample, **kwargs):
        calls.append((name, image.shape, list(data_sample.text), len(data_sample.pred_instances),
                      kwargs['draw_gt']))
        return add_datasample(name, image, data_sample, **kwargs)

    monkeypatch.setattr(inferencer.visualizer, 'add_datasample', spy)
    out = inferencer(images[0], ['red circle', 'blue square'], return_vis=True)
    shape = mmcv.imread(images[0]).shape
    assert calls == [(images[0], shape, ['red circle'], 1, False),
                     (images[0], shape, ['blue square'], 1, False)]
    assert [d.shape for d in out['visualization'][0]] == [shape, shape]


def test_config_root_without_checkout(tmp_path, monkeypatch):
    """Installed from a wheel, config names resolve in the package's ``.mim/configs``; a
    ``configs/`` folder next to the package that is not a checkout (no setup.py) is not ours."""
    import mmevf.apis.inference_inputs as inference_inputs
    package = tmp_path / 'site-packages' / 'mmevf'
    shipped = package / '.mim' / 'configs'
    (shipped / 'evf_sam').mkdir(parents=True)
    (shipped / '_base_').mkdir()
    (shipped / 'evf_sam' / 'shipped_cfg.py').write_text("_base_ = ['../_base_/base.py']\n")
    (shipped / '_base_' / 'base.py').write_text('value = 3\n')
    (tmp_path / 'site-packages' / 'configs').mkdir()  # another distribution's folder
    (tmp_path / 'site-packages' / 'configs' / 'shipped_cfg.py').write_text('value = 0\n')
    monkeypatch.setattr(inference_inputs, 'PACKAGE_DIR', str(package))
    assert inference_inputs.config_root() == str(shipped)
    path = resolve_config('shipped_cfg')
    assert path == str(shipped / 'evf_sam' / 'shipped_cfg.py')
    assert Config.fromfile(path).value == 3  # its _base_ read from .mim too
    with pytest.raises(FileNotFoundError, match=r'\.mim.configs; did you mean shipped_cfg'):
        resolve_config('shiped_cfg')
    with pytest.raises(FileNotFoundError):
        resolve_config('base')  # _base_ fragments are not config names
