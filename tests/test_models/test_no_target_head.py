"""The optional no-target head of the text-prompted segmentors (generalized referring
segmentation, gRefCOCO-style): off by default it changes nothing (keys, losses, predictions of
the tiny EVF-SAM and tiny DIT); with it, ``loss_no_target`` is BCE on its logits, the mask loss
counts the target expressions only (or all, ``mask_loss_on_no_target``), predictions carry the
scores and empty the masks of no-target expressions, and it trains."""
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmevf.engine.runner_setup import register_all_modules
from mmevf.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    'evf': ROOT / 'configs/evf_sam/evf-tiny_synthref.py',
    'dit': ROOT / 'configs/dit/l-dit-tiny_synthref.py',
}
VOCAB = {'evf': 128, 'dit': 26}  # the tiny configs' text vocabularies
HEAD = dict(type='NoTargetHead', hidden_channels=32)
# per image, one flag per expression: image 0 has 2 expressions, image 1 has 3
MIXED = [[False, True], [True, False, False]]


def build(kind: str, **overrides):
    register_all_modules()
    cfg = Config.fromfile(str(CONFIGS[kind])).model
    if kind == 'evf':  # the tiny EVF-SAM's training-only grounding loss has its own tests
        cfg.grounding_head = None
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()  # no dropout: every forward of a batch gives the same numbers


def make_batch(model, kind: str, flags: List[List[bool]], with_flags: bool = True) -> dict:
    """Two hand-made images (64 x 48 originals, resized to 256 x 192) with len(flags[i])
    expressions each, through the model's data preprocessor; no-target masks are empty."""
    g = torch.Generator().manual_seed(1)
    images, mm_images, samples = [], [], []
    for i, image_flags in enumerate(flags):
        masks = torch.zeros(len(image_flags), 64, 48, dtype=torch.bool)
        for j, no_target in enumerate(image_flags):
            if not no_target:
                top, left = 4 + 8 * j, 6 + 5 * j + 3 * i
                masks[j, top:top + 20, left:left + 16] = True
        metainfo = dict(img_shape=(256, 192), ori_shape=(64, 48), img_path=f'img{i}.jpg')
        if with_flags:
            metainfo['no_target'] = list(image_flags)
        sample = DetDataSample(metainfo=metainfo)
        sample.gt_instances = InstanceData(masks=BitmapMasks(masks.numpy(), 64, 48))
        sample.text_ids = [torch.randint(2, VOCAB[kind], (3 + j, ), generator=g)
                           for j in range(len(image_flags))]
        samples.append(sample)
        images.append(torch.randint(0, 256, (3, 256, 192), generator=g, dtype=torch.uint8))
        mm_images.append(torch.rand(3, 64, 64, generator=g))
    inputs = dict(img=images)
    if kind == 'evf':
        inputs['mm_img'] = mm_images
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples))


@lru_cache(maxsize=None)
def model_pair(kind: str):
    """(kind, the tiny model as configured, the same weights plus a no-target head)."""
    plain = build(kind)
    headed = build(kind, no_target_head=HEAD)
    missing, unexpected = headed.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith('no_target_head.') for k in missing)
    return kind, plain, headed


@pytest.fixture(params=['evf', 'dit'])
def models(request):
    return model_pair(request.param)


def hand_mask_loss(model, logits: List[torch.Tensor], batch: dict,
                   keep: Optional[List[torch.Tensor]]) -> dict:
    """SAMPromptHead.loss per image on the selected masks, averaged over them by hand."""
    sums, total = {}, 0
    for i, (logits_i, sample) in enumerate(zip(logits, batch['data_samples'])):
        gt = sample.gt_instances.masks.to_tensor(torch.float32, 'cpu')
        if keep is not None:
            logits_i, gt = logits_i[keep[i]], gt[keep[i]]
        if not len(gt):
            continue
        for name, value in model.prompt_head.loss(logits_i, gt).items():
            sums[name] = sums.get(name, 0) + value * len(gt)
        total += len(gt)
    return {name: value / total for name, value in sums.items()}


# ---------------------------------------------------------------------- off by default
@pytest.mark.parametrize('kind', ['evf', 'dit'])
def test_off_by_default_nothing_changes(kind):
    """``no_target_head=None`` (and the other two options at their defaults) builds the
    model of the config: same keys and weights, same loss, predictions and tensor output; the
    ``no_target`` metainfo is ignored without the head."""
    plain = build(kind)
    explicit = build(kind, no_target_head=None, no_target_threshold=0.5,
                     mask_loss_on_no_target=False)
    keys = list(plain.state_dict())
    assert keys == list(explicit.state_dict()) and not any('no_target' in k for k in keys)
    assert all(torch.equal(v, explicit.state_dict()[k]) for k, v in plain.state_dict().items())
    batch = make_batch(plain, kind, MIXED, with_flags=False)
    flagged = make_batch(plain, kind, MIXED)
    with torch.no_grad():
        losses = plain.loss(**batch)
        assert set(losses) == {'loss_mask_bce', 'loss_mask_dice'}
        for other in (explicit.loss(**batch), explicit.loss(**flagged)):
            assert all(torch.equal(losses[k], other[k]) for k in losses) and set(other) == \
                set(losses)
        outputs = plain(**batch, mode='tensor')
        assert all(len(out) == 2 for out in outputs)  # LowResOutput stays a 2-tuple
        for a, b in zip(outputs, explicit(**flagged, mode='tensor')):
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and len(b) == 2
        preds = plain.predict(**batch)
        for a, b in zip(preds, explicit.predict(**flagged)):
            assert set(b.pred_instances.keys()) == {'masks', 'scores'}
            assert torch.equal(a.pred_instances.masks, b.pred_instances.masks)
            assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)


def test_decoding_is_the_prompt_head_call():
    """Tiny EVF-SAM without the head decodes exactly as SAMPromptHead.forward on each image's
    embedding (the call before the head existed)."""
    model = build('evf')
    batch = make_batch(model, 'evf', MIXED)
    inputs = batch['inputs']
    with torch.no_grad():
        outputs = model(**batch, mode='tensor')
        embeddings = model.image_embeddings(inputs)
        prompts = model.group_by_image(model.encode_prompts(inputs), inputs)
        for i, (low_res, iou) in enumerate(outputs):
            expected = model.prompt_head(embeddings[i:i + 1], prompts[i])
            assert torch.equal(low_res, expected[0]) and torch.equal(iou, expected[1])


# ---------------------------------------------------------------------- with the head
def test_head_adds_a_logit_and_keeps_the_masks(models):
    kind, plain, headed = models
    batch = make_batch(plain, kind, MIXED)
    with torch.no_grad():
        for a, b in zip(plain(**batch, mode='tensor'), headed(**batch, mode='tensor')):
            assert len(b) == 3 and b[2].shape == (len(a[0]), )
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # hook changes nothing
    # the logit is the MLP on SAM's IoU-token output (hs[:, 0])
    head = headed.prompt_head
    emb = torch.randn(1, head.embed_dim, head.image_embedding_size, head.image_embedding_size)
    text = torch.randn(3, 2, head.embed_dim)
    with torch.no_grad():
        masks, ious, token = head.forward_with_iou_token(emb, text)
        assert token.shape == (3, head.embed_dim)
        assert all(torch.equal(x, y) for x, y in zip(head(emb, text), (masks, ious)))
        logits = headed.decode_prompt_head(emb, text)[2]
        assert torch.equal(logits, headed.no_target_head(token))


def test_loss_by_hand(models):
    kind, plain, headed = models
    batch = make_batch(plain, kind, MIXED)
    flags = torch.tensor(sum(MIXED, []))
    with torch.no_grad():
        outputs = headed.mask_logits(batch['inputs'], batch['data_samples'])
        losses = headed.loss(**batch)
        assert set(losses) == {'loss_mask_bce', 'loss_mask_dice', 'loss_no_target'}
        no_target_logits = torch.cat([out[2] for out in outputs])
        torch.testing.assert_close(
            losses['loss_no_target'],
            F.binary_cross_entropy_with_logits(no_target_logits, flags.float()))
        # mask losses: the target expressions only
        keep = [~torch.tensor(f) for f in MIXED]
        expected = hand_mask_loss(headed, [out[0] for out in outputs], batch, keep)
        for name, value in expected.items():
            torch.testing.assert_close(losses[name], value)
        # ... or all of them (the empty mask as target): the model without the head's loss
        headed.mask_loss_on_no_target = True
        try:
            everything = headed.loss(**batch)
        finally:
            headed.mask_loss_on_no_target = False
        reference = plain.loss(**batch)
        for name, value in reference.items():
            torch.testing.assert_close(everything[name], value, rtol=0, atol=0)
        assert not torch.allclose(everything['loss_mask_bce'], losses['loss_mask_bce'])
        torch.testing.assert_close(everything['loss_no_target'], losses['loss_no_target'])


@pytest.mark.parametrize('flags', [[[True, True], [True]], [[False, False], [False]]],
                         ids=['all-no-target', 'all-target'])
def test_batches_of_one_kind(flags):
    """All no-target: the mask losses are zeros (kept in the graph), the total is finite and
    backpropagates; all target: the mask losses of the model without the head."""
    _, plain, headed = model_pair('evf')
    batch = make_batch(plain, 'evf', flags)
    headed.zero_grad()
    losses = headed.loss(**batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    with torch.no_grad():
        reference = plain.loss(**batch)
    for name in ('loss_mask_bce', 'loss_mask_dice'):
        if flags[0][0]:
            assert losses[name].item() == 0 and losses[name].requires_grad
        else:
            torch.testing.assert_close(losses[name], reference[name], rtol=0, atol=0)
    assert losses['loss_no_target'] > 0
    headed.zero_grad()


def test_logits_follow_their_expressions_through_layout_groups():
    """EVF-SAM with points / boxes decodes each image's expressions by layout, then restores
    their order: each no-target logit comes back with its own expression's mask."""
    _, plain, headed = model_pair('evf')

    def geometric_batch():
        batch = make_batch(plain, 'evf', MIXED)
        first, second = batch['data_samples']
        first.prompt_points = [None, torch.tensor([[10., 12.], [20., 30.]])]
        first.prompt_point_labels = [None, torch.tensor([1, 0])]
        # box, none, box: layout groups [0, 2] and [1], so the order has to be restored
        second.prompt_boxes = [torch.tensor([5., 5., 20., 50.]), None,
                               torch.tensor([1., 1., 40., 60.])]
        return batch

    batch = geometric_batch()
    inputs = batch['inputs']
    with torch.no_grad():
        outputs = headed(**batch, mode='tensor')
        for a, b in zip(plain(**geometric_batch(), mode='tensor'), outputs):
            assert len(b) == 3 and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        embeddings = headed.image_embeddings(inputs)
        texts = headed.group_by_image(headed.encode_prompts(inputs), inputs)
        for i, sample in enumerate(batch['data_samples']):
            for j, p in enumerate(headed.expression_prompts(sample, len(texts[i]))):
                alone = headed.decode_prompt_head(
                    embeddings[i:i + 1], texts[i][[p.text_index]],
                    None if p.points is None else (p.points[None], p.labels[None]),
                    None if p.box is None else p.box[None])
                torch.testing.assert_close(alone[0][0], outputs[i][0][j])
                torch.testing.assert_close(alone[2][0], outputs[i][2][j])


def test_prediction_empties_no_target_masks(models):
    kind, plain, headed = models
    batch = make_batch(plain, kind, MIXED)
    with torch.no_grad():
        logits = torch.cat([out[2] for out in headed(**batch, mode='tensor')])
        scores = torch.sigmoid(logits)
        # a threshold between the scores: some expressions each way
        headed.no_target_threshold = float(scores.median())
        try:
            preds = headed.predict(**make_batch(plain, kind, MIXED))
        finally:
            headed.no_target_threshold = 0.5
        reference = plain.predict(**make_batch(plain, kind, MIXED))
    above = scores > scores.median()
    assert 0 < above.sum() < len(above)
    got_scores = torch.cat([p.pred_instances.no_target_scores for p in preds])
    got_flags = torch.cat([p.pred_instances.no_target for p in preds])
    torch.testing.assert_close(got_scores, scores)
    assert got_scores.dtype == torch.float32 and got_flags.dtype == torch.bool
    assert torch.equal(got_flags, above)
    masks = torch.cat([p.pred_instances.masks for p in preds])
    ref_masks = torch.cat([p.pred_instances.masks for p in reference])
    assert not masks[above].any()
    assert torch.equal(masks[~above], ref_masks[~above])
    assert ref_masks[above].any()  # there was something to empty
    for p, r in zip(preds, reference):
        assert torch.equal(p.pred_instances.scores, r.pred_instances.scores)


def test_gradient_reaches_the_head_and_through_the_token(models):
    kind, plain, headed = models
    batch = make_batch(plain, kind, MIXED)
    headed.zero_grad()
    headed.loss(**batch)['loss_no_target'].backward()
    grads = {name: p.grad for name, p in headed.named_parameters()}
    assert all(grads[n] is not None and grads[n].abs().sum() > 0
               for n in grads if n.startswith('no_target_head.'))
    # the IoU token's path: its embedding and the two-way transformer get the gradient
    assert grads['prompt_head.mask_decoder.iou_token.weight'].abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if n.startswith('prompt_head.mask_decoder.transformer.'))
    headed.zero_grad()
    # a trainable written without the head still trains it (new weights)
    assert all(p.requires_grad for n, p in headed.named_parameters()
               if n.startswith('no_target_head.'))


@pytest.mark.parametrize('kind', ['evf', 'dit'])
def test_the_head_leaves_the_other_initial_weights_alone(kind):
    """Built from the same seed, the model with the head starts where the model without it
    does: its random initialisation does not shift the random stream of what is built after."""
    plain, headed = build(kind).state_dict(), build(kind, no_target_head=HEAD).state_dict()
    assert set(headed) - set(plain) and all(k.startswith('no_target_head.')
                                            for k in set(headed) - set(plain))
    for key, value in plain.items():
        assert torch.equal(headed[key], value), key


@pytest.mark.parametrize('kind', ['evf', 'dit'])
def test_detached_head_leaves_the_mask_path_as_without_it(kind):
    """``detach_input=True`` with the mask loss on every expression: the no-target loss trains
    the head only, and the rest of the model gets exactly the gradients of the model without
    the head (whose mask loss also counts every expression)."""
    _, plain, _ = model_pair(kind)
    headed = build(kind, no_target_head=dict(HEAD, detach_input=True),
                   mask_loss_on_no_target=True)
    headed.load_state_dict(plain.state_dict(), strict=False)
    batch = make_batch(plain, kind, MIXED)
    plain.zero_grad()
    sum(plain.loss(**batch).values()).backward()
    headed.zero_grad()
    losses = headed.loss(**batch)
    sum(losses.values()).backward()
    for name, param in plain.named_parameters():
        other = dict(headed.named_parameters())[name]
        assert (param.grad is None) == (other.grad is None), name
        if param.grad is not None:
            torch.testing.assert_close(other.grad, param.grad, rtol=1e-5, atol=1e-7)
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in headed.named_parameters() if n.startswith('no_target_head.'))
    plain.zero_grad()


def test_sgd_lowers_the_no_target_loss():
    """A handful of plain SGD steps on one tiny batch (the config's trainable parameters, the
    total loss) take ``loss_no_target`` below the best constant guess: the head learns to
    tell the expressions apart, not only the rate of no-target ones."""
    model = build('evf', no_target_head=HEAD)
    batch = make_batch(model, 'evf', MIXED)
    rate = torch.tensor(sum(MIXED, [])).float().mean()
    constant = F.binary_cross_entropy(rate, rate).item()  # the flags' entropy, 0.673
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.005)
    history = []
    for _ in range(8):
        losses = model.loss(**batch)
        history.append(losses['loss_no_target'].item())
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    assert history[-1] < min(0.9 * history[0], constant - 0.05), history


def test_flags_must_match_the_expressions():
    model = build('evf', no_target_head=HEAD)
    batch = make_batch(model, 'evf', MIXED)
    batch['data_samples'][1].set_metainfo(dict(no_target=[True]))
    with pytest.raises(ValueError, match='img1.jpg: 1 no_target flags for 3 expressions'):
        model.loss(**batch)
