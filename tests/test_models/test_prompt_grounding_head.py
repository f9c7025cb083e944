"""EVF-SAM's training-only grounding loss (``PromptGroundingHead``): its logits, targets and
losses by hand; in the tiny EVF-SAM it adds two losses computed from the decoding's own prompts
and image embeddings (the image encoder still runs once per image), leaves the mask losses and
every prediction as without it, and trains the prompt path."""
from functools import lru_cache
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmevf.engine.runner_setup import register_all_modules
from mmevf.models.heads import PromptGroundingHead
from mmevf.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/evf_sam/evf-tiny_synthref.py'


def test_logits_by_hand():
    head = PromptGroundingHead(init_scale=2.0, init_bias=-1.0)
    torch.manual_seed(0)
    prompts, embedding = torch.randn(3, 4), torch.randn(4, 2, 5)
    logits = head(prompts, embedding).detach()
    assert logits.shape == (3, 2, 5)
    for n in range(3):
        for y in range(2):
            for x in range(5):
                expected = 2.0 * float(prompts[n] @ embedding[:, y, x]) / 2.0 - 1.0
                assert abs(float(logits[n, y, x]) - expected) < 1e-5
    with pytest.raises(ValueError, match=r'\(N, C\) prompts and a \(C, h, w\) embedding'):
        head(torch.randn(3, 5), embedding)


def test_targets_are_cell_shares_in_sams_padded_frame():
    """A 12 x 8 image already at its input size (no resize), padded to 16 x 16, cells of
    4 x 4: the left 6 columns of rows 0-3 set -> cell (0, 0) full, (0, 1) half; the padding
    and the rest empty."""
    mask = torch.zeros(1, 12, 8)
    mask[0, :4, :6] = 1
    targets = PromptGroundingHead.targets(mask, (12, 8), side=16, grid=4)
    expected = torch.zeros(1, 4, 4)
    expected[0, 0, 0], expected[0, 0, 1] = 1.0, 0.5
    torch.testing.assert_close(targets, expected)
    # an original twice as small is resized to the input size first: the same shares
    small = torch.zeros(1, 6, 4)
    small[0, :2, :3] = 1
    resized = PromptGroundingHead.targets(small, (12, 8), side=16, grid=4)
    assert resized.shape == (1, 4, 4) and resized[0, 2:].sum() == 0 and resized[0, :, 2:].sum() == 0
    assert abs(float(resized.sum()) - float(targets.sum())) < 0.1


def test_loss_by_hand():
    head = PromptGroundingHead()
    torch.manual_seed(1)
    logits, targets = torch.randn(2, 3, 3), torch.rand(2, 3, 3)
    losses = head.loss(logits, targets)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none').mean((1, 2))
    p, t = logits.sigmoid().flatten(1), targets.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    torch.testing.assert_close(losses['loss_grounding_bce'], bce.mean())
    torch.testing.assert_close(losses['loss_grounding_dice'], dice.mean())
    with pytest.raises(ValueError, match='of one shape'):
        head.loss(logits, targets[:1])


def build(**overrides):
    register_all_modules()
    cfg = Config.fromfile(str(CONFIG)).model
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()  # no dropout: every forward of a batch gives the same numbers


@lru_cache(maxsize=None)
def models():
    """(the tiny EVF-SAM as configured, with its grounding head; the same without it)."""
    return build(), build(grounding_head=None)


def make_batch(model) -> dict:
    """Two images (64 x 48 originals at 256 x 192) with 2 and 3 expressions, each a box mask."""
    g = torch.Generator().manual_seed(1)
    images, mm_images, samples = [], [], []
    for i, count in enumerate((2, 3)):
        masks = torch.zeros(count, 64, 48, dtype=torch.bool)
        for j in range(count):
            masks[j, 4 + 8 * j:24 + 8 * j, 6 + 5 * j + 3 * i:22 + 5 * j + 3 * i] = True
        sample = DetDataSample(metainfo=dict(img_shape=(256, 192), ori_shape=(64, 48),
                                             img_path=f'img{i}.jpg'))
        sample.gt_instances = InstanceData(masks=BitmapMasks(masks.numpy(), 64, 48))
        sample.text_ids = [torch.randint(2, 128, (3 + j, ), generator=g) for j in range(count)]
        samples.append(sample)
        images.append(torch.randint(0, 256, (3, 256, 192), generator=g, dtype=torch.uint8))
        mm_images.append(torch.rand(3, 64, 64, generator=g))
    return model.data_preprocessor(dict(inputs=dict(img=images, mm_img=mm_images),
                                        data_samples=samples))


def test_the_config_has_it_and_off_adds_nothing():
    headed, plain = models()
    assert isinstance(headed.grounding_head, PromptGroundingHead) and plain.grounding_head is None
    extra = set(headed.state_dict()) - set(plain.state_dict())
    assert extra == {'grounding_head.scale', 'grounding_head.bias'}
    assert all(p.requires_grad for p in headed.grounding_head.parameters())
    for key, value in plain.state_dict().items():  # built from one seed: the same weights
        assert torch.equal(headed.state_dict()[key], value), key


def test_loss_adds_grounding_on_the_decodings_own_features():
    headed, plain = models()
    batch = make_batch(headed)
    calls = []
    hook = headed.image_encoder.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    try:
        losses = headed.loss(**batch)
    finally:
        hook.remove()
    assert calls == [(2, 64, 16, 16)]  # one encoder pass for the batch's two images
    reference = plain.loss(**batch)
    assert set(losses) == set(reference) | {'loss_grounding_bce', 'loss_grounding_dice'}
    for name, value in reference.items():
        torch.testing.assert_close(losses[name], value)
    # by hand, from the features the model computes
    with torch.no_grad():
        inputs = batch['inputs']
        embeddings = headed.image_encoder(inputs['img'])
        prompts = headed.encode_prompts(inputs)[:, 0]
        index = inputs['expr_image_index']
        logits = torch.cat([headed.grounding_head(prompts[index == i], embeddings[i])
                            for i in range(2)])
        targets = torch.cat([
            headed.grounding_head.targets(
                s.gt_instances.masks.to_tensor(torch.float32, 'cpu'), s.img_shape, 256, 16)
            for s in batch['data_samples']])
    expected = headed.grounding_head.loss(logits, targets)
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value)


def test_predictions_are_unchanged():
    headed, plain = models()
    batch = make_batch(headed)
    with torch.no_grad():
        got = headed.predict(**make_batch(headed))
        reference = plain.predict(**batch)
    for g, r in zip(got, reference):
        assert torch.equal(g.pred_instances.masks, r.pred_instances.masks)


def test_grounding_trains_the_prompt_path():
    headed, _ = models()
    batch = make_batch(headed)
    headed.zero_grad()
    losses = headed.loss(**batch)
    (losses['loss_grounding_bce'] + losses['loss_grounding_dice']).backward()
    grads = {name: p.grad for name, p in headed.named_parameters()}
    for prefix in ('grounding_head.', 'projector.', 'mm_encoder.', 'image_encoder.'):
        assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items()
                   if n.startswith(prefix)), prefix
    # the decoder is not on this path
    assert all(g is None or g.abs().sum() == 0 for n, g in grads.items()
               if n.startswith('prompt_head.mask_decoder.'))
    headed.zero_grad()


def test_points_and_boxes_are_refused():
    headed, _ = models()
    batch = make_batch(headed)
    batch['data_samples'][0].set_field(torch.tensor([[[10.0, 12.0]], [[20.0, 22.0]]]),
                                       'prompt_points', field_type='metainfo')
    with pytest.raises(ValueError, match='grounding_head trains on text expressions only'):
        headed.loss(**batch)
