"""SAMImageEncoder and SAMPromptHead against segment_anything's Sam (tiny random models)."""
import pytest
import torch
from mmengine.model import BaseModule
from segment_anything import build_sam_vit_b, build_sam_vit_h, build_sam_vit_l
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)

from mmevf.models.heads import SAMPromptHead
from mmevf.models.sam import SAMImageEncoder

DIM, IMG, EMB = 32, 128, 8  # prompt width, padded input side, image-embedding side
ENCODER_ARCH = dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1, ))
ENCODER_CFG = dict(arch=ENCODER_ARCH, img_size=IMG, window_size=4, out_chans=DIM)
HEAD_CFG = dict(embed_dim=DIM, image_embedding_size=EMB, input_image_size=IMG,
                iou_head_hidden_dim=32, transformer=dict(depth=2, mlp_dim=64, num_heads=2))


def sam_init(path: str, prefix: str) -> dict:
    """The init_cfg loading one part of an official-layout SAM file (scoped: no runner here)."""
    return dict(type='mmevf.StrictPretrained', checkpoint=path, layout='sam', prefix=prefix)


def tiny_sam() -> Sam:
    """A small SAM built from segment_anything's classes, weights moved off their init."""
    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=IMG, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4,
            out_chans=DIM, qkv_bias=True, use_rel_pos=True, window_size=4,
            global_attn_indexes=(1, ), norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6)),
        prompt_encoder=PromptEncoder(
            embed_dim=DIM, image_embedding_size=(EMB, EMB), input_image_size=(IMG, IMG),
            mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer_dim=DIM, iou_head_depth=3,
            iou_head_hidden_dim=32,
            transformer=TwoWayTransformer(depth=2, embedding_dim=DIM, mlp_dim=64, num_heads=2)))
    with torch.no_grad():
        for param in sam.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return sam.eval()


@pytest.fixture(scope='module')
def sam_file(tmp_path_factory):
    sam = tiny_sam()
    path = tmp_path_factory.mktemp('sam') / 'sam_tiny.pth'
    torch.save(sam.state_dict(), path)  # the layout of the official sam_vit_*.pth files
    return sam, str(path)


@pytest.fixture(scope='module')
def modules(sam_file):
    _, path = sam_file
    encoder = SAMImageEncoder(**ENCODER_CFG, init_cfg=sam_init(path, 'image_encoder.'))
    head = SAMPromptHead(**HEAD_CFG, init_cfg=sam_init(path, 'prompt_head.'))
    encoder.init_weights()
    head.init_weights()
    return encoder, head.eval()


def test_official_file_loads_strictly(sam_file, modules):
    sam, _ = sam_file
    official = sam.state_dict()
    for module, prefixes in zip(modules, [('image_encoder.', ), ('prompt_encoder.',
                                                                  'mask_decoder.')]):
        own = module.state_dict()
        if len(prefixes) == 1:
            own = {prefixes[0] + k: v for k, v in own.items()}
        expected = {k for k in official if k.startswith(prefixes)}
        assert set(own) == expected
        for key, value in own.items():
            assert torch.equal(value, official[key]), key


def test_image_encoder_matches_sam(sam_file, modules):
    sam, _ = sam_file
    images = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        expected = sam.image_encoder(images)
    out = modules[0](images)
    assert out.shape == (2, DIM, EMB, EMB)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match='expected'):
        modules[0](torch.randn(1, 3, IMG // 2, IMG // 2))


def prompts(kind: str, n: int = 3) -> dict:
    gen = torch.Generator().manual_seed(1)
    out = {}
    if 'points' in kind:
        out['point_coords'] = torch.rand(n, 2, 2, generator=gen) * torch.tensor([96., 128.])
        out['point_labels'] = torch.tensor([[1, 0], [1, 1], [0, 1]])[:n]
    if 'box' in kind:
        xy = torch.rand(n, 2, generator=gen) * 48
        out['boxes'] = torch.cat([xy, xy + 16 + torch.rand(n, 2, generator=gen) * 40], dim=1)
    if 'mask' in kind:
        out['mask_inputs'] = torch.randn(n, 1, 4 * EMB, 4 * EMB, generator=gen) * 5
    return out


@pytest.mark.parametrize('multimask', [False, True])
@pytest.mark.parametrize('kind', ['box', 'points', 'points+box', 'mask'])
def test_prompt_head_matches_sam(sam_file, modules, kind, multimask):
    sam, _ = sam_file
    encoder, head = modules
    torch.manual_seed(2)
    image = torch.rand(3, IMG, 96) * 255  # resized image (before padding), original 200 x 150
    record = dict(image=image, original_size=(200, 150), **prompts(kind))
    expected, = sam([record], multimask_output=multimask)
    low_res, iou = expected['low_res_logits'], expected['iou_predictions']
    if multimask:  # EVF-SAM keeps the mask with the best predicted IoU
        best = iou.argmax(dim=1)
        low_res, iou = low_res[torch.arange(3), best, None], iou[torch.arange(3), best, None]

    with torch.no_grad():
        embedding = encoder(sam.preprocess(image)[None])
        points = (record['point_coords'], record['point_labels']) if 'points' in kind else None
        out, out_iou = head(embedding, points=points, boxes=record.get('boxes'),
                            mask_inputs=record.get('mask_inputs'), multimask_output=multimask)
        masks = head.postprocess_masks(out, image.shape[-2:], record['original_size'])
    assert out.shape == (3, 1, 4 * EMB, 4 * EMB) and out_iou.shape == (3, 1)
    torch.testing.assert_close(out, low_res, rtol=0, atol=1e-5)
    torch.testing.assert_close(out_iou, iou, rtol=0, atol=1e-5)
    assert masks.shape == (3, 1, 200, 150)
    if not multimask:
        assert torch.equal(masks > head.mask_threshold, expected['masks'])


def test_postprocess_masks_equals_sam(sam_file, modules):
    sam, _ = sam_file
    low_res = torch.randn(4, 1, 4 * EMB, 4 * EMB)
    for input_size, original_size in [((128, 96), (200, 150)), ((70, 128), (35, 64))]:
        torch.testing.assert_close(
            modules[1].postprocess_masks(low_res, input_size, original_size),
            sam.postprocess_masks(low_res, input_size, original_size), rtol=0, atol=0)


def decoder_inputs(head: SAMPromptHead, call):
    """Run ``call`` and return the keyword arguments the mask decoder received."""
    seen = {}
    handle = head.mask_decoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True)
    try:
        with torch.no_grad():
            result = call()
    finally:
        handle.remove()
    return seen, result


def test_text_tokens_follow_box_tokens(modules):
    _, head = modules
    embedding, text = torch.randn(1, DIM, EMB, EMB), torch.randn(3, 1, DIM)
    boxes = prompts('box')['boxes']
    seen, _ = decoder_inputs(head, lambda: head(embedding, text_embeds=text, boxes=boxes))
    with torch.no_grad():
        box_tokens, dense = head.prompt_encoder(points=None, boxes=boxes, masks=None)
    assert seen['sparse_prompt_embeddings'].shape == (3, 3, DIM)
    torch.testing.assert_close(seen['sparse_prompt_embeddings'],
                               torch.cat([box_tokens, text], dim=1), rtol=0, atol=0)
    torch.testing.assert_close(seen['dense_prompt_embeddings'], dense, rtol=0, atol=0)


def test_text_only_prompts_share_one_image_embedding(modules):
    _, head = modules
    embedding, text = torch.randn(1, DIM, EMB, EMB), torch.randn(5, 1, DIM)
    seen, (masks, iou) = decoder_inputs(head, lambda: head(embedding, text_embeds=text))
    assert masks.shape == (5, 1, 4 * EMB, 4 * EMB) and iou.shape == (5, 1)
    # the sparse prompt is exactly the text; no mask -> SAM's no_mask_embed for every prompt
    torch.testing.assert_close(seen['sparse_prompt_embeddings'], text, rtol=0, atol=0)
    no_mask = head.prompt_encoder.no_mask_embed.weight.reshape(1, DIM, 1, 1)
    assert seen['dense_prompt_embeddings'].shape == (5, DIM, EMB, EMB)
    assert torch.equal(seen['dense_prompt_embeddings'], no_mask.expand(5, -1, EMB, EMB))
    # batch-size agnostic: each prompt decoded alone gives the same mask
    with torch.no_grad():
        single, single_iou = head(embedding, text_embeds=text[3:4])
    torch.testing.assert_close(single, masks[3:4], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(single_iou, iou[3:4], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='number of prompts'):
        head(embedding, text_embeds=text, boxes=prompts('box')['boxes'])
    with pytest.raises(ValueError, match='image embedding'):
        head(embedding.expand(2, -1, -1, -1), text_embeds=text)


def test_low_precision(modules):
    encoder, head = modules
    embedding, text = encoder(torch.randn(1, 3, IMG, IMG)), torch.randn(2, 1, DIM)
    points = (torch.rand(2, 1, 2) * IMG, torch.ones(2, 1))
    with torch.no_grad():
        reference, _ = head(embedding, text_embeds=text, points=points)
        # a bf16 (frozen) image encoder feeding an fp32 head
        mixed, _ = head(embedding.bfloat16(), text_embeds=text.bfloat16(), points=points)
        half = SAMPromptHead(**HEAD_CFG).eval()
        half.load_state_dict(head.state_dict())
        half.to(torch.bfloat16)
        low, low_iou = half(embedding.bfloat16(), text_embeds=text.bfloat16(), points=points,
                            multimask_output=True)
    assert mixed.dtype == torch.float32 and low.dtype == low_iou.dtype == torch.bfloat16
    torch.testing.assert_close(mixed, reference, rtol=0.05, atol=0.1)
    assert half.postprocess_masks(low, (IMG, IMG), (64, 64)).dtype == torch.float32


def test_wrong_shape_names_key(sam_file, tmp_path):
    sam, _ = sam_file
    state = sam.state_dict()
    state['image_encoder.pos_embed'] = torch.zeros(1, 4, 4, 8)  # another width: not resizable
    state['mask_decoder.iou_token.weight'] = torch.zeros(1, 16)
    path = str(tmp_path / 'bad.pth')
    torch.save(state, path)
    with pytest.raises(ValueError, match=r'pos_embed: file \(1, 4, 4, 8\) vs model'):
        SAMImageEncoder(**ENCODER_CFG, init_cfg=sam_init(path, 'image_encoder.')).init_weights()
    with pytest.raises(ValueError, match=r'mask_decoder.iou_token.weight: file \(1, 16\)'):
        SAMPromptHead(**HEAD_CFG, init_cfg=sam_init(path, 'prompt_head.')).init_weights()


def test_frozen_encoder():
    encoder = SAMImageEncoder(**ENCODER_CFG)
    assert not any(p.requires_grad for p in encoder.parameters())
    assert encoder.train() is encoder
    assert not any(m.training for m in encoder.modules())
    images = torch.randn(1, 3, IMG, IMG, requires_grad=True)
    assert encoder(images).grad_fn is None
    trainable = SAMImageEncoder(**ENCODER_CFG, frozen=False).train()
    assert all(m.training for m in trainable.modules())
    trainable(images).sum().backward()
    assert all(p.grad is not None for p in trainable.parameters())


def test_parent_init_weights_keeps_loaded_weights(sam_file):
    sam, path = sam_file

    class Parent(BaseModule):

        def __init__(self):
            super().__init__(init_cfg=dict(type='Constant', val=0.0, layer=['Linear', 'Conv2d']))
            self.encoder = SAMImageEncoder(**ENCODER_CFG, init_cfg=sam_init(path, 'image_encoder.'))
            self.head = SAMPromptHead(**HEAD_CFG, init_cfg=sam_init(path, 'prompt_head.'))

    parent = Parent()
    parent.init_weights()
    with torch.no_grad():
        parent.encoder.neck[0].weight.add_(1)
    parent.encoder.init_weights()  # a second call neither re-initialises nor reloads
    official = sam.state_dict()
    expected_neck = official['image_encoder.neck.0.weight'] + 1
    assert torch.equal(parent.encoder.neck[0].weight, expected_neck)
    for key, value in parent.head.state_dict().items():
        assert torch.equal(value, official[key]), key


def evf_losses(pred: torch.Tensor, gt: torch.Tensor):
    """EVF-SAM's sigmoid_ce_loss and dice_loss (scale 1000, eps 1e-6), mean over masks."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(pred, gt, reduction='none')
    bce = bce.flatten(1).mean(1).sum() / (len(pred) + 1e-8)
    prob, target = pred.sigmoid().flatten(1), gt.flatten(1)
    numerator = 2 * (prob / 1000 * target).sum(-1)
    denominator = (prob / 1000).sum(-1) + (target / 1000).sum(-1)
    dice = 1 - (numerator + 1e-6) / (denominator + 1e-6)
    return bce, dice.sum() / (len(pred) + 1e-8)


def test_loss_equals_evf_formula():
    torch.manual_seed(3)
    pred = torch.randn(4, 37, 53) * 3
    gt = (torch.rand(4, 37, 53) > 0.6).float()
    gt[1] = 0  # an empty ground-truth mask
    gt[2], pred[2] = 0, -20  # empty and predicted empty: dice ~ 0.004, decided by eps
    bce, dice = evf_losses(pred, gt)
    head = SAMPromptHead(**HEAD_CFG)
    losses = head.loss(pred, gt)
    assert set(losses) == {'loss_mask_bce', 'loss_mask_dice'}
    torch.testing.assert_close(losses['loss_mask_bce'], bce, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(losses['loss_mask_dice'], dice, rtol=1e-6, atol=1e-7)
    # avg_factor = masks in the batch: per-image results add up to the batch mean
    split = [head.loss(pred[:1], gt[:1], avg_factor=4), head.loss(pred[1:], gt[1:], avg_factor=4)]
    torch.testing.assert_close(split[0]['loss_mask_dice'] + split[1]['loss_mask_dice'], dice)
    weighted = SAMPromptHead(
        **HEAD_CFG, loss_bce=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, loss_weight=2.),
        loss_dice=dict(type='mmdet.DiceLoss', naive_dice=True, eps=1e-3, loss_weight=0.5))
    losses = weighted.loss(pred, gt)
    torch.testing.assert_close(losses['loss_mask_bce'], 2 * bce)
    torch.testing.assert_close(losses['loss_mask_dice'], 0.5 * dice)
    empty = head.loss(pred[:0].requires_grad_(), gt[:0])
    assert all(value.item() == 0 and value.requires_grad for value in empty.values())


def test_sam_h_parameter_count_and_presets():
    with torch.device('meta'):
        encoder, head = SAMImageEncoder(arch='vit_h'), SAMPromptHead()
    counts = [sum(p.numel() for p in m.parameters()) for m in (encoder, head)]
    assert counts == [637_026_048, 641_090_608 - 637_026_048]
    # every preset has the official layout: same keys and shapes as build_sam_vit_*
    for arch, build in [('vit_b', build_sam_vit_b), ('vit_l', build_sam_vit_l),
                        ('vit_h', build_sam_vit_h)]:
        with torch.device('meta'):
            official = build().state_dict()
            ours = encoder.state_dict() if arch == 'vit_h' else SAMImageEncoder(
                arch=arch).state_dict()
        ours = {f'image_encoder.{k}': v.shape for k, v in ours.items()}
        ours.update({k: v.shape for k, v in head.state_dict().items()})
        assert ours == {k: v.shape for k, v in official.items()}, arch
