"""Points and boxes with (or instead of) the text (issue 16): EVF-SAM with the text masked out
equals segment_anything's ``SamPredictor`` on the same SAM weights; text + points runs through
the same path; the inferencer's and ``tools/infer.py``'s point / box inputs and their errors."""
import json

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement
from segment_anything import SamPredictor
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)

from mmevf.apis import TextSegInferencer, pair_inputs, resolve_config
from mmevf.engine.runner_setup import register_all_modules
from mmevf.models.segmentors.text_prompt_segmentor import TextPromptSegmentor, to_input_frame
from mmevf.registry import MODELS
from tests.conftest import load_tool
from tests.test_apis.test_text_seg_inferencer import CONFIG, EncoderCalls

# a non-square image (not a multiple of the 256 input either): 150 x 230 (H x W)
HEIGHT, WIDTH = 150, 230
# prompts in original-image pixels, with fractional coordinates (the float64 mapping matters)
CASES = {
    'point': dict(points=[(61.3, 47.8)], box=None),
    'box': dict(points=None, box=(20.5, 30.0, 140.25, 120.0)),
    'points+box': dict(points=[(80.0, 70.5), (30.0, 40.0, 0)], box=(10.0, 15.5, 160.0, 140.0)),
    'points with background': dict(points=[(120.7, 60.2, 1), (40.0, 100.0, 0),
                                           (200.0, 20.0, 0), (150.0, 130.0, 1)], box=None),
}


def tiny_sam() -> Sam:
    """segment_anything's Sam at the size of the tiny EVF-SAM (ViT 4 x 128 at 256², 64-d
    prompts), random weights moved off their initialisation (zero rel-pos tables ...)."""
    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=256, patch_size=16, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4,
            out_chans=64, qkv_bias=True, use_rel_pos=True, window_size=8,
            global_attn_indexes=(1, 3), norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6)),
        prompt_encoder=PromptEncoder(embed_dim=64, image_embedding_size=(16, 16),
                                     input_image_size=(256, 256), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer_dim=64, iou_head_depth=3,
            iou_head_hidden_dim=64,
            transformer=TwoWayTransformer(depth=2, embedding_dim=64, mlp_dim=256, num_heads=4)))
    with torch.no_grad():
        for param in sam.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return sam.eval()


@pytest.fixture(scope='module')
def sam_pair(tmp_path_factory, xlmr_tokenizer_dir):
    """The tiny Sam, and a TextSegInferencer whose EVF-SAM loaded the same SAM weights from an
    official-layout file (``StrictPretrained(layout='sam')``)."""
    register_all_modules()
    sam = tiny_sam()
    folder = tmp_path_factory.mktemp('sam_parity')
    sam_file = folder / 'sam_tiny.pth'
    torch.save(sam.state_dict(), sam_file)
    cfg = Config.fromfile(resolve_config(CONFIG)).model
    for part in ('image_encoder', 'prompt_head'):
        cfg[part]['init_cfg'] = dict(type='StrictPretrained', checkpoint=str(sam_file),
                                     layout='sam', prefix=f'{part}.')
    torch.manual_seed(1)
    model = MODELS.build(cfg)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), folder / 'evf.pth')
    inferencer = TextSegInferencer(CONFIG, weights=str(folder / 'evf.pth'),
                                   tokenizer=str(xlmr_tokenizer_dir), device='cpu',
                                   show_progress=False)
    official = sam.state_dict()
    for key, value in inferencer.model.prompt_head.state_dict().items():
        assert torch.equal(value, official[key]), key  # the file really was read
    return sam, inferencer


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """(150, 230, 3) uint8 BGR: noise with a few flat shapes."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 80, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[30:110, 40:120] = (20, 40, 220)
    img[60:140, 150:220] = (200, 180, 30)
    return img


def sam_inputs(case: dict) -> dict:
    """A CASES entry as ``SamPredictor.predict`` keyword arguments."""
    out = dict(point_coords=None, point_labels=None, box=None)
    if case['points']:
        rows = [p if len(p) == 3 else (*p, 1) for p in case['points']]
        out['point_coords'] = np.array([r[:2] for r in rows], dtype=np.float64)
        out['point_labels'] = np.array([r[2] for r in rows])
    if case['box'] is not None:
        out['box'] = np.array(case['box'], dtype=np.float64)
    return out


def tensor_mode(inferencer: TextSegInferencer, images, texts, points=None, boxes=None):
    """The model's low-resolution logits and IoUs (``mode='tensor'``), one pair per image."""
    items = pair_inputs(images, texts, points, boxes)
    data = next(inferencer.preprocess(items, batch_size=len(items)))
    with torch.no_grad():
        return inferencer.model(**inferencer.model.data_preprocessor(data), mode='tensor')


@pytest.mark.parametrize('multimask', [False, True])
def test_masked_text_equals_sam_predictor(sam_pair, image, multimask, monkeypatch):
    """No text: the masks, low-res logits and IoUs of SamPredictor for points only, a box only,
    points + box and several foreground / background points, on a non-square image. With
    ``multimask_output`` SAMPromptHead keeps the best of SAM's 3 masks by predicted IoU."""
    sam, inferencer = sam_pair
    monkeypatch.setattr(inferencer.model.prompt_head, 'multimask_output', multimask)
    predictor = SamPredictor(sam)
    predictor.set_image(image[..., ::-1].copy())  # RGB, as SamPredictor expects
    names = list(CASES)
    points = [CASES[n]['points'] for n in names]
    boxes = [CASES[n]['box'] for n in names]
    # all four cases as expressions of one image: the image is encoded once for them
    with EncoderCalls(inferencer.model.image_encoder) as image_calls, \
            EncoderCalls(inferencer.model.mm_encoder) as mm_calls:
        pred = inferencer(image, [None] * 4, points=points, boxes=boxes)['predictions'][0]
    assert image_calls.batches == [1] and mm_calls.batches == []  # no text: no BEiT-3 pass
    assert pred['texts'] == [None] * 4 and pred['masks'].shape == (4, HEIGHT, WIDTH)
    (low_res, iou), = tensor_mode(inferencer, image, [None] * 4, points, boxes)

    nontrivial, chosen = 0, set()
    for j, name in enumerate(names):
        logits, scores, sam_low_res = predictor.predict(**sam_inputs(CASES[name]),
                                                        multimask_output=multimask,
                                                        return_logits=True)
        best = int(np.argmax(scores)) if multimask else 0
        masks = logits > predictor.model.mask_threshold
        # equal masks wherever SAM's logit is not within float rounding of the threshold (the
        # two sides sum in different orders; a pixel at |logit| < 1e-4 may flip either way)
        decided = np.abs(logits[best] - predictor.model.mask_threshold) > 1e-4
        assert decided.mean() > 0.99, name  # random weights: small logits, some near 0
        np.testing.assert_array_equal(pred['masks'][j][decided], masks[best][decided],
                                      err_msg=name)
        torch.testing.assert_close(low_res[j, 0], torch.from_numpy(sam_low_res[best]),
                                   rtol=0, atol=1e-5, msg=name)
        assert abs(pred['scores'][j] - float(scores[best])) < 1e-5, name
        torch.testing.assert_close(iou[j, 0].item(), float(scores[best]), rtol=0, atol=1e-5)
        nontrivial += 0.01 < masks[best].mean() < 0.99
        chosen.add(best)
    assert nontrivial >= 2  # the comparison is not between empty (or full) masks only
    if multimask:  # and the best-of-3 choice is exercised, not always SAM's first mask
        assert chosen != {0}


def test_coordinates_map_as_sam(sam_pair):
    """Points and boxes go to the 256-input frame as ResizeLongestSide.apply_coords does."""
    from segment_anything.utils.transforms import ResizeLongestSide
    xy = np.array([[61.3, 47.8], [229.9, 0.0], [0.0, 149.7]])
    expected = ResizeLongestSide(256).apply_coords(xy, (HEIGHT, WIDTH))
    resized = ResizeLongestSide.get_preprocess_shape(HEIGHT, WIDTH, 256)
    mapped = to_input_frame(torch.from_numpy(xy), (HEIGHT, WIDTH), resized)
    assert mapped.dtype == torch.float32
    assert torch.equal(mapped, torch.as_tensor(expected, dtype=torch.float))


def test_text_with_points(sam_pair, image):
    """Text + points: the decoder gets SAM's point tokens, then the text token; the result
    differs from the text alone and from the points alone, and the other expressions of the
    image keep their text-only results."""
    _, inferencer = sam_pair
    model = inferencer.model
    points = [(61.3, 47.8), (150.0, 100.0, 0)]
    text = 'the red circle'
    (low_res, iou), = tensor_mode(inferencer, image, [text, text, None, 'leftmost zebra'],
                                  [None, points, points, None])
    (text_only, text_only_iou), = tensor_mode(inferencer, image, [text, 'leftmost zebra'])
    # the text-only expressions decode exactly as without geometric prompts around
    torch.testing.assert_close(low_res[[0, 3]], text_only, rtol=0, atol=0)
    torch.testing.assert_close(iou[[0, 3]], text_only_iou, rtol=0, atol=0)
    for other in (0, 2):  # text + points vs text alone, vs points alone
        assert (low_res[1] - low_res[other]).abs().max() > 1e-3

    # expected: the head called with the text embedding and the mapped points
    items = pair_inputs(image, text)
    data = model.data_preprocessor(next(inferencer.preprocess(items)))
    with torch.no_grad():
        embedding = model.image_embeddings(data['inputs'])
        text_embeds = model.encode_prompts(data['inputs'])
        sample = data['data_samples'][0]
        xy = to_input_frame(torch.tensor([p[:2] for p in points], dtype=torch.float64),
                            sample.ori_shape, sample.img_shape)
        expected, expected_iou = model.prompt_head(
            embedding, text_embeds=text_embeds, points=(xy[None], torch.tensor([[1, 0]])))
    # the texts are encoded in batches of another composition (padding, BLAS blocking): float
    # rounding of ~1e-6 on logits of order 1
    torch.testing.assert_close(low_res[1:2], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(iou[1:2], expected_iou, rtol=1e-5, atol=1e-5)

    pred = inferencer(image, [text, text], points=[None, points])['predictions'][0]
    assert pred['texts'] == [text, text]
    assert pred['points'] == [None, [[61.3, 47.8, 1], [150.0, 100.0, 0]]]
    assert pred['boxes'] == [None, None]
    assert pred['scores'][0] != pred['scores'][1]


def test_mixed_batch_encodes_each_image_once(sam_pair, image):
    """Images with text, with text + a box, and with a box alone, in one batch: one image-encoder
    pass for the batch, one BEiT-3 row per expression with text."""
    _, inferencer = sam_pair
    small = image[:70, :90].copy()
    with EncoderCalls(inferencer.model.image_encoder) as image_calls, \
            EncoderCalls(inferencer.model.mm_encoder) as mm_calls:
        preds = inferencer([image, small, image], [['red circle', None], None, 'triangle'],
                           points=[[None, [(5, 5)]], [(10, 20, 0), (30, 30)], None],
                           boxes=[[(1, 1, 60, 60), None], (2, 3, 40, 50), None],
                           batch_size=3)['predictions']
    assert image_calls.batches == [3] and mm_calls.batches == [2]
    assert [p['masks'].shape for p in preds] == [(2, HEIGHT, WIDTH), (1, 70, 90),
                                                 (1, HEIGHT, WIDTH)]
    assert preds[1]['points'] == [[[10.0, 20.0, 0], [30.0, 30.0, 1]]]
    assert preds[1]['boxes'] == [[2.0, 3.0, 40.0, 50.0]]
    # one image alone gives the same masks as within the batch
    alone = inferencer(small, None, points=[(10, 20, 0), (30, 30)],
                       boxes=(2, 3, 40, 50))['predictions'][0]
    np.testing.assert_array_equal(alone['masks'], preds[1]['masks'])


def test_input_errors(sam_pair, image):
    _, inferencer = sam_pair
    name = r'image #0 \(array\)'
    cases = [
        (dict(texts=None), rf'expression #0 for {name} has no prompt'),
        (dict(texts=['a', None], points=[None, []]), rf'expression #1 for {name} has no prompt'),
        (dict(texts='a', points=[(1, 2, 2)]), r'point #0: label must be 1 \(foreground\) or 0'),
        (dict(texts='a', points=(3, 4)), r'point #0: expected \(x, y\) or \(x, y, label\) '
                                          r'\(one point is written \[\(x, y\)\]\)'),
        (dict(texts='a', points=[(1, 2, 1, 0)]), r'point #0: expected .* got 4 numbers'),
        (dict(texts='a', points=[(1, float('nan'))]), r'point #0: .* is not finite'),
        (dict(texts='a', points='1,2'), 'points must be a list'),
        (dict(texts='a', boxes=(10, 5, 10, 20)), r'expected x1 < x2 and y1 < y2'),
        (dict(texts='a', boxes=(1, 2, 3)), r'box: expected \(x1, y1, x2, y2\), got 3 numbers'),
        (dict(texts=['a', 'b'], points=[[(1, 2)]]), r'points: 1 entries for 2 expressions'),
        (dict(texts=['a', 'b'], boxes=(1, 2, 3, 4)), r'boxes: 4 entries for 2 expressions'),
        (dict(texts=['a', None], points=[None, [(5, 6), (231, 10)]]),
         rf'expression #1 for {name}, point #1: \(231, 10\) lies outside the 230x150 image'),
        (dict(texts=None, boxes=(0, 0, 100, 151)),
         rf'expression #0 for {name}, box: \(100, 151\) lies outside the 230x150 image'),
    ]
    for kwargs, match in cases:
        texts = kwargs.pop('texts')
        with pytest.raises(ValueError, match=match):
            inferencer(image, texts, **kwargs)
    with pytest.raises(ValueError, match=r'points: 1 entries for 2 images'):
        inferencer([image, image], ['a', 'b'], points=[None])
    with pytest.raises(ValueError, match=r'points\[1\]: 1 entries for 2 expressions'):
        inferencer([image, image], ['a', ['b', 'c']], points=[None, [[(1, 2)]]])
    with pytest.raises(TypeError, match=rf'expression #0 for {name} is a int, not a str'):
        inferencer(image, [3], points=[[(1, 2)]])


def test_model_checks_samples(sam_pair):
    """The model's own checks of hand-made data samples name the image."""
    sample = BaseDataElement(metainfo=dict(img_path='x.jpg', text=['a', None], ori_shape=(10, 20),
                                           img_shape=(128, 256)))
    sample.prompt_points = [None, None]
    sample.prompt_point_labels = [None, None]
    sample.prompt_boxes = [None, None]
    with pytest.raises(ValueError, match=r'expression #1 of x.jpg has no prompt'):
        TextPromptSegmentor.expression_prompts(sample, 1)
    with pytest.raises(ValueError, match=r'x.jpg: 1 expressions have text but the model '
                                         r'encoded 2'):
        TextPromptSegmentor.expression_prompts(sample, 2)
    sample.prompt_boxes = [None]
    with pytest.raises(ValueError, match=r'x.jpg: the prompt fields disagree'):
        TextPromptSegmentor.expression_prompts(sample, 1)
    sample.prompt_boxes = [None, torch.tensor([2., 1., 6., 9.])]
    text, box = TextPromptSegmentor.expression_prompts(sample, 1)
    assert text.text_index == 0 and text.box is None and box.text_index is None
    # (10, 20) -> (128, 256): both axes scaled by 12.8
    assert torch.equal(box.box, torch.tensor([25.6, 12.8, 76.8, 115.2]))


@pytest.mark.filterwarnings('ignore:no weights given')
def test_text_only_models_reject_points(synthref_root, image):
    """DIT (text inside SAM's image encoder) has no geometric path: a clear error."""
    inferencer = TextSegInferencer(resolve_config('l-dit-tiny_synthref'), device='cpu',
                                   tokenizer=str(synthref_root / 'bert_tokenizer'),
                                   show_progress=False)
    with pytest.raises(ValueError, match='DITSAM takes text prompts only'):
        inferencer(image, 'red circle', points=[(3, 4)])


def test_infer_tool_points_and_box(sam_pair, xlmr_tokenizer_dir, synthref_root, tmp_path,
                                   capsys):
    """``--point`` / ``--box`` without an expression (one mask; one per repeated --box) and
    with expressions (added to every one); the masks written equal the inferencer's."""
    _, inferencer = sam_pair
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    height, width = mmcv.imread(str(image)).shape[:2]
    weights = tmp_path / 'evf.pth'
    torch.save(dict(state_dict=inferencer.model.state_dict()), weights)
    infer = load_tool('infer')
    common = ['--config', CONFIG, '--weights', str(weights), '--tokenizer',
              str(xlmr_tokenizer_dir), '--device', 'cpu']

    out = tmp_path / 'geometry'
    infer.main([str(image), '--point', '40,30', '--point', '100,60,0', '--box', '10,10,120,90',
                *common, '--out-dir', str(out)])
    printed = capsys.readouterr().out
    assert '2 points (1+ 1-) + box (10, 10, 120, 90)' in printed
    expected = inferencer(str(image), None, points=[(40, 30), (100, 60, 0)],
                          boxes=(10, 10, 120, 90))['predictions'][0]
    mask = mmcv.imread(str(out / 'masks' / f'{image.stem}_0.png'), flag='unchanged')
    np.testing.assert_array_equal(mask > 0, expected['masks'][0])
    assert sorted(p.name for p in (out / 'masks').iterdir()) == [f'{image.stem}_0.png']
    record = json.loads((out / 'preds' / f'{image.stem}.json').read_text())
    assert record['texts'] == [None] and record['boxes'] == [[10.0, 10.0, 120.0, 90.0]]
    assert record['points'] == [[[40.0, 30.0, 1], [100.0, 60.0, 0]]]
    overlay = mmcv.imread(str(out / 'vis' / f'{image.stem}_0.png'), channel_order='rgb')
    assert overlay.shape == (height, width, 3)

    out = tmp_path / 'texts'
    results = infer.main([str(image), 'red circle', '--point', '40,30', 'blue square', *common,
                          '--out-dir', str(out)])
    pred, = results['predictions']
    assert pred['texts'] == ['red circle', 'blue square']
    assert pred['points'] == [[[40.0, 30.0, 1]]] * 2 and pred['boxes'] == [None, None]
    assert '"blue square" + 1 point (1+ 0-)' in capsys.readouterr().out
    assert len(list((out / 'masks').glob('*.png'))) == 2

    out = tmp_path / 'boxes'
    results = infer.main([str(image), '--box', '10,10,60,60', '--box', '70,20,200,120',
                          *common, '--out-dir', str(out)])
    assert results['predictions'][0]['boxes'] == [[10.0, 10.0, 60.0, 60.0],
                                                  [70.0, 20.0, 200.0, 120.0]]
    assert len(list((out / 'masks').glob('*.png'))) == 2

    for argv, message in [([], 'give an expression, --point or --box'),
                          (['a', '--box', '1,2,3,4', '--box', '1,2,3,4'], 'an expression takes '
                           'one box'),
                          (['--point', '1,2,3'], 'point label must be 1'),
                          (['--box', '1,2,3'], r'expected X1,Y1,X2,Y2')]:
        with pytest.raises(SystemExit):
            infer.main([str(image), *argv, *common, '--out-dir', str(tmp_path / 'x')])
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match=rf'point #0: \(999, 3\) lies outside the '
                                         rf'{width}x{height} image'):
        infer.main([str(image), '--point', '999,3', *common, '--out-dir', str(tmp_path / 'x')])
