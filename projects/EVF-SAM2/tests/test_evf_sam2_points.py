"""Points and boxes with (or instead of) the text on SAM-2: without text EVF-SAM2 equals
``sam2``'s own ``SAM2ImagePredictor`` on the same weights; with text, the predictor with the text
token appended to its prompt encoder's tokens; SAM-2's image encoder once per image."""
import numpy as np
import pytest
import torch
from evf_sam2_helpers import TINY_CONFIG, import_project, require_sam2

require_sam2()

from mmengine.config import Config  # noqa: E402

from mmevf.apis import TextSegInferencer, pair_inputs  # noqa: E402
from tests.test_apis.test_point_box_prompts import (CASES, HEIGHT, WIDTH,  # noqa: E402,F401
                                                    image, sam_inputs, tensor_mode)
from tests.test_apis.test_text_seg_inferencer import EncoderCalls  # noqa: E402


@pytest.fixture(scope='module')
def inferencer(synthref_root, tmp_path_factory):
    """The tiny EVF-SAM2 (SAM-2 Hiera-T at 256²) with random weights moved off their
    initialisation, its test pipeline resizing as SAM2ImagePredictor does (``backend='sam2'``)."""
    import_project()  # registers EVFSAM2 and SAM2Resize
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.test_pipeline = [dict(t, backend='sam2') if t['type'] == 'SAM2Resize' else t
                         for t in cfg.test_pipeline]
    tokenizer = str(synthref_root / 'tokenizer')
    torch.manual_seed(0)
    model = TextSegInferencer(cfg, device='cpu', show_progress=False, tokenizer=tokenizer).model
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
        # IoUs that do not always prefer SAM-2's first mask (the best-of-3 choice exercised)
        for param in model.sam2.sam_mask_decoder.iou_prediction_head.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    weights = tmp_path_factory.mktemp('evf_sam2_points') / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), weights)
    return TextSegInferencer(cfg, weights=str(weights), device='cpu', show_progress=False,
                             tokenizer=tokenizer)


def predictor_for(model, image):
    """SAM2ImagePredictor on the model's own SAM-2, the RGB image set."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    predictor = SAM2ImagePredictor(model.sam2)
    side = model.sam2.image_size  # the predictor's feature sizes are written for 1024²
    predictor._bb_feat_sizes = [(side // 4, side // 4), (side // 8, side // 8),
                                (side // 16, side // 16)]
    predictor.set_image(image[..., ::-1].copy())
    return predictor


def test_points_and_boxes_equal_sam2_predictor(inferencer, image):
    """No text: the masks (wherever the logit is not within rounding of 0), low-res logits and
    IoUs of SAM2ImagePredictor (best of its three masks, as EVF-SAM2's image path) for a point,
    a box, points + box and several foreground / background points on a non-square image, all
    four expressions of one image."""
    model = inferencer.model
    predictor = predictor_for(model, image)
    names = list(CASES)
    points = [CASES[n]['points'] for n in names]
    boxes = [CASES[n]['box'] for n in names]
    with EncoderCalls(model.sam2.image_encoder) as image_calls, \
            EncoderCalls(model.mm_encoder) as mm_calls:
        pred = inferencer(image, [None] * 4, points=points, boxes=boxes)['predictions'][0]
    assert image_calls.batches == [1] and mm_calls.batches == []  # no text: no BEiT-3 pass
    assert pred['masks'].shape == (4, HEIGHT, WIDTH)
    (low_res, iou), = tensor_mode(inferencer, image, [None] * 4, points, boxes)

    nontrivial, chosen = 0, set()
    for j, name in enumerate(names):
        with torch.no_grad():
            logits, scores, sam_low_res = predictor.predict(
                **sam_inputs(CASES[name]), multimask_output=True, return_logits=True)
        best = int(np.argmax(scores))
        mask = logits[best] > 0
        # the same mask wherever the sign is not within float rounding (~5e-6) of zero
        sure = np.abs(logits[best]) > 1e-4
        np.testing.assert_array_equal(pred['masks'][j][sure], mask[sure], err_msg=name)
        assert (~sure).mean() < 1e-3, name
        torch.testing.assert_close(low_res[j, 0], torch.from_numpy(sam_low_res[best]),
                                   rtol=0, atol=1e-4, msg=name)
        assert abs(pred['scores'][j] - float(scores[best])) < 1e-5, name
        nontrivial += 0.01 < mask.mean() < 0.99
        chosen.add(best)
    assert nontrivial >= 2  # not only empty (or full) masks compared
    assert chosen != {0}  # the best-of-3 choice is exercised


def test_text_with_points_and_box(inferencer, image):
    """Text + points + box: SAM2ImagePredictor's point / box tokens (box corners first, a
    padding point last), then the text token; text-only expressions of the same image decode
    as without geometric prompts around."""
    model = inferencer.model
    case = CASES['points+box']
    texts = ['the red circle', 'the red circle', 'leftmost square']
    (low_res, iou), = tensor_mode(inferencer, image, texts, [None, case['points'], None],
                                  [None, case['box'], None])
    (text_only, text_only_iou), = tensor_mode(inferencer, image, texts[::2])
    # (BEiT-3 reads 3 texts there, 2 here: batch composition may round differently)
    torch.testing.assert_close(low_res[[0, 2]], text_only, rtol=0, atol=1e-5)
    torch.testing.assert_close(iou[[0, 2]], text_only_iou, rtol=0, atol=1e-5)
    assert (low_res[1] - low_res[0]).abs().max() > 1e-3

    # reference: the predictor with the text token appended to its prompt encoder's output
    items = pair_inputs(image, texts[1])
    data = model.data_preprocessor(next(inferencer.preprocess(items)))
    with torch.no_grad():
        text = model.encode_prompts(data['inputs'])  # (1, 1, 256)

    def append_text(module, args, output):
        sparse, dense = output
        assert sparse.shape[1] == 2 + 2 + 1  # box corners, two points, SAM-2's padding point
        return torch.cat([sparse, text], dim=1), dense

    predictor = predictor_for(model, image)
    handle = model.sam2.sam_prompt_encoder.register_forward_hook(append_text)
    try:
        with torch.no_grad():
            _, scores, sam_low_res = predictor.predict(**sam_inputs(case), multimask_output=True)
    finally:
        handle.remove()
    best = int(np.argmax(scores))
    # BEiT-3 encoded the text in batches of another composition: float rounding ~1e-6
    torch.testing.assert_close(low_res[1, 0], torch.from_numpy(sam_low_res[best]),
                               rtol=1e-4, atol=1e-4)
    assert abs(iou[1, 0].item() - float(scores[best])) < 1e-4
