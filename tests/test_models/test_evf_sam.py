"""EVF-SAM end to end: an official checkpoint folder (random weights, small architecture),
converted by tools/model_converters/evf_sam2mmevf.py and loaded into ``EVFSAM``, gives the
official model's masks — preprocessing of a real non-square JPEG included."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)
from segment_anything.utils.transforms import ResizeLongestSide
from torchscale.architecture.config import EncoderConfig
from torchscale.model.BEiT3 import BEiT3
from torchvision import transforms as T

import mmevf.models  # noqa: F401
from mmevf.registry import MODELS
from mmevf.utils.tokenizer import build_tokenizer
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
PROMPT_DIM, BEIT_DIM, VOCAB = 32, 64, 64
EXPRESSIONS = ['the red circle left of the blue square', 'leftmost zebra', '[semantic] sky']


def official_modules():
    """The official model's parts with random weights: SAM (segment_anything), BEiT-3
    (torchscale) and the projector MLP (`text_hidden_fcs.0`)."""
    torch.manual_seed(0)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=1024, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
            out_chans=PROMPT_DIM, qkv_bias=True, use_rel_pos=True, window_size=14,
            global_attn_indexes=(1, ), norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6)),
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_DIM, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
            mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3, transformer_dim=PROMPT_DIM, iou_head_depth=3,
            iou_head_hidden_dim=32, transformer=TwoWayTransformer(
                depth=2, embedding_dim=PROMPT_DIM, mlp_dim=64, num_heads=2)))
    beit3 = BEiT3(EncoderConfig(
        img_size=224, patch_size=16, vocab_size=VOCAB, multiway=True, layernorm_embedding=False,
        normalize_output=True, no_output_layer=True, drop_path_rate=0.0, mlp_ratio=4,
        encoder_embed_dim=BEIT_DIM, encoder_layers=2, encoder_attention_heads=4,
        encoder_ffn_embed_dim=4 * BEIT_DIM))
    projector = torch.nn.Sequential(
        torch.nn.Linear(BEIT_DIM, BEIT_DIM), torch.nn.ReLU(), torch.nn.Linear(BEIT_DIM, PROMPT_DIM))
    for module in (sam, beit3, projector):  # move every weight off its structured init
        for param in module.parameters():
            param.data.add_(torch.randn_like(param) * 0.05)
    return sam.eval(), beit3.eval(), projector.eval()


def mmevf_model_cfg(tokenizer_pad_id: int = 1) -> dict:
    return dict(
        type='EVFSAM',
        data_preprocessor=dict(type='SAMDataPreprocessor', pad_token_id=tokenizer_pad_id),
        image_encoder=dict(
            type='SAMImageEncoder', img_size=1024, window_size=14, mlp_ratio=2,
            out_chans=PROMPT_DIM,
            arch=dict(embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1, ))),
        mm_encoder=dict(
            type='BEiT3MultiwayEncoder', vocab_size=VOCAB,
            arch=dict(embed_dims=BEIT_DIM, num_layers=2, num_heads=4, ffn_dims=4 * BEIT_DIM)),
        projector=dict(type='EVFProjector', out_channels=PROMPT_DIM),
        prompt_head=dict(
            type='SAMPromptHead', embed_dim=PROMPT_DIM, iou_head_hidden_dim=32,
            transformer=dict(depth=2, mlp_dim=64, num_heads=2)))


@pytest.fixture(scope='module')
def official_folder(tmp_path_factory, xlmr_tokenizer_dir):
    """An EVF-SAM checkpoint folder in the official (Hugging Face) layout."""
    sam, beit3, projector = official_modules()
    folder = tmp_path_factory.mktemp('evf-sam-official')
    state = {f'visual_model.{k}': v for k, v in sam.state_dict().items()}
    state.update({f'mm_extractor.beit3.{k}': v for k, v in beit3.state_dict().items()})
    state.update({f'text_hidden_fcs.0.{k}': v for k, v in projector.state_dict().items()})
    torch.save(state, folder / 'pytorch_model.bin')
    (folder / 'config.json').write_text(json.dumps(dict(
        model_type='evf', hidden_size=BEIT_DIM, out_dim=PROMPT_DIM, sam_scale='huge',
        mm_extractor_scale='large')))
    (folder / 'sentencepiece.bpe.model').write_bytes(
        (xlmr_tokenizer_dir / 'sentencepiece.bpe.model').read_bytes())
    (folder / 'tokenizer_config.json').write_text(
        json.dumps({'tokenizer_class': 'XLMRobertaTokenizer'}))
    return folder, (sam, beit3, projector)


@pytest.fixture(scope='module')
def photo(tmp_path_factory) -> Path:
    """A non-square JPEG with smooth structure (so resampling differences would show)."""
    h, w = 427, 640
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 / w), (yy * 255 / h), 128 + 100 * np.sin(xx / 17.0)], -1)
    img = img.astype(np.uint8)
    cv2.circle(img, (200, 200), 80, (0, 0, 255), -1)
    cv2.rectangle(img, (400, 100), (560, 300), (255, 0, 0), -1)
    path = tmp_path_factory.mktemp('photo') / 'photo.jpg'
    cv2.imwrite(str(path), img)
    return path


def official_forward(modules, tokenizer, image_path: Path, texts: list) -> list:
    """The official EVF-SAM inference for each expression of ``texts`` on one image: (H, W)
    mask logits each. The official code runs it once per (image, expression) pair; SAM's
    image embedding, the same every time, is computed once here."""
    sam, beit3, projector = modules
    rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    resized = ResizeLongestSide(1024).apply_image(rgb)
    sam_input = sam.preprocess(torch.from_numpy(resized).permute(2, 0, 1)[None].float())
    beit_input = T.Compose([
        T.ToTensor(), T.Resize((224, 224), interpolation=3, antialias=None),
        T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))])(rgb)[None]
    masks = []
    with torch.no_grad():
        image_embeddings = sam.image_encoder(sam_input)
        for text in texts:
            ids = torch.tensor([tokenizer(text)['input_ids']])
            tokens = beit3(visual_tokens=beit_input, textual_tokens=ids,
                           text_padding_position=torch.zeros_like(ids))['encoder_out']
            feat = projector(tokens[:, :1])
            sparse, dense = sam.prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse, feat], dim=1)
            low_res, _ = sam.mask_decoder(
                image_embeddings=image_embeddings, image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=False)
            masks.append(sam.postprocess_masks(low_res, resized.shape[:2], rgb.shape[:2])[0, 0])
    return masks


@pytest.fixture(scope='module')
def converted(official_folder, tmp_path_factory):
    folder, _ = official_folder
    dst = tmp_path_factory.mktemp('converted') / 'evf_sam_tiny.pth'
    cmd = [sys.executable, 'tools/model_converters/evf_sam2mmevf.py', str(folder), str(dst)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (dst.parent / 'evf_sam_tiny_tokenizer' / 'sentencepiece.bpe.model').is_file()
    # nothing the user had is overwritten: main() in this process with the same command line
    # (the real run above proves the script starts)
    outputs = [dst, *(dst.parent / 'evf_sam_tiny_tokenizer').iterdir()]
    before = {path: path.read_bytes() for path in outputs}
    tool = load_tool('model_converters/evf_sam2mmevf')
    with pytest.MonkeyPatch.context() as m:
        m.setattr(sys, 'argv', cmd[1:])
        with pytest.raises(FileExistsError, match='exists; pass --force'):
            tool.main()
    assert {path: path.read_bytes() for path in outputs} == before
    return dst


def test_converted_checkpoint_gives_official_masks(official_folder, converted, photo):
    _, modules = official_folder
    init_default_scope('mmevf')
    model = MODELS.build(mmevf_model_cfg()).eval()
    load_checkpoint(model, str(converted), strict=True)
    tokenizer_dir = str(converted.parent / 'evf_sam_tiny_tokenizer')
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='SAMResize'),
        dict(type='TokenizeText', tokenizer=tokenizer_dir),
        dict(type='PackReferInputs'),
    ])
    sample = pipeline(dict(img_path=str(photo), text=list(EXPRESSIONS)))

    calls = []
    model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([sample]))
        (logits, _), = model.mask_logits(data['inputs'], data['data_samples'])
        predicted = model(**data, mode='predict')[0]
    assert len(calls) == 2  # once per image per call: all three expressions share it

    tokenizer = build_tokenizer(tokenizer_dir)
    references = official_forward(modules, tokenizer, photo, EXPRESSIONS)
    for i, reference in enumerate(references):
        assert logits[i].shape == reference.shape == (427, 640)
        torch.testing.assert_close(logits[i], reference, rtol=0, atol=1e-4)
    masks = predicted.pred_instances.masks
    assert masks.dtype == torch.bool and masks.shape == (3, 427, 640)
    assert torch.equal(masks, logits > 0)


def training_sample(photo: Path, tokenizer_dir: Path) -> dict:
    """The photo with two expressions and a square ground-truth mask each, packed."""
    init_default_scope('mmevf')
    pipeline = Compose([
        dict(type='LoadImageFromFile'), dict(type='SAMResize'),
        dict(type='mmdet.LoadAnnotations', with_mask=True, with_bbox=False, with_label=False),
        dict(type='TokenizeText', tokenizer=str(tokenizer_dir)), dict(type='PackReferInputs')])
    polygon = [[100., 100., 300., 100., 300., 300., 100., 300.]]
    return pipeline(dict(img_path=str(photo), text=EXPRESSIONS[:2],
                         instances=[dict(mask=polygon, ignore_flag=0)] * 2))


def test_loss_trains_exactly_the_trainable_modules(photo, xlmr_tokenizer_dir):
    """Paper setting: SAM's image encoder frozen (no gradient, not in the optimizer); the
    multimodal encoder, projector, prompt encoder and mask decoder train. A Tab. 4 switch
    freezes the multimodal encoder instead."""
    from mmengine.optim import build_optim_wrapper
    init_default_scope('mmevf')
    sample = training_sample(photo, xlmr_tokenizer_dir)
    for trainable, frozen in [(('mm_encoder', 'projector', 'prompt_head'), ('image_encoder', )),
                              (('projector', 'prompt_head'), ('image_encoder', 'mm_encoder'))]:
        model = MODELS.build(dict(mmevf_model_cfg(), trainable=trainable)).train()
        assert not model.image_encoder.training  # frozen: stays in eval mode
        data = model.data_preprocessor(pseudo_collate([sample]), training=True)
        losses = model(**data, mode='loss')
        assert set(losses) == {'loss_mask_bce', 'loss_mask_dice'}
        sum(losses.values()).backward()
        optim = build_optim_wrapper(model, dict(
            constructor='TrainableParamsOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4)))
        in_optimizer = {id(p) for group in optim.param_groups for p in group['params']}
        for name, param in model.named_parameters():
            if name.startswith(frozen):
                assert not param.requires_grad and param.grad is None, name
                assert id(param) not in in_optimizer, name
            else:
                assert param.requires_grad and id(param) in in_optimizer, name
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(trainable[0])]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with pytest.raises(ValueError, match='matches no parameter'):
        MODELS.build(dict(mmevf_model_cfg(), trainable=('decoder', )))


def test_text_only_baseline_ignores_the_image(photo, xlmr_tokenizer_dir):
    """Tab. 3 text-only: the multimodal encoder never sees the image, so the prompts do not
    change when the BEiT-3 view of the image does."""
    init_default_scope('mmevf')
    model = MODELS.build(dict(mmevf_model_cfg(), mm_encoder_image=False,
                              projector=dict(type='EVFProjector', out_channels=PROMPT_DIM,
                                             token='text_cls'))).eval()
    pipeline = Compose([dict(type='LoadImageFromFile'), dict(type='SAMResize'),
                        dict(type='TokenizeText', tokenizer=str(xlmr_tokenizer_dir)),
                        dict(type='PackReferInputs')])
    data = model.data_preprocessor(pseudo_collate([pipeline(dict(img_path=str(photo),
                                                                  text=EXPRESSIONS))]))
    with torch.no_grad():
        prompts = model.encode_prompts(data['inputs'])
        data['inputs']['mm_img'] = torch.randn_like(data['inputs']['mm_img'])
        torch.testing.assert_close(model.encode_prompts(data['inputs']), prompts)
    assert prompts.shape == (3, 1, PROMPT_DIM)


def test_parameters_only_bf16_cast_as_deepspeed(photo, xlmr_tokenizer_dir):
    """DeepSpeed bf16 casts the parameters and keeps every buffer (the preprocessor's mean /
    std, SAM's positional-encoding matrix) in fp32: the model casts its inputs to its weights'
    dtype (the bf16 frozen image encoder would refuse float32 images)."""
    init_default_scope('mmevf')
    model = MODELS.build(mmevf_model_cfg()).train()
    for param in model.parameters():
        param.data = param.data.bfloat16()
    assert model.data_preprocessor.mean.dtype == torch.float32
    sample = training_sample(photo, xlmr_tokenizer_dir)
    data = model.data_preprocessor(pseudo_collate([sample]), training=True)
    assert data['inputs']['img'].dtype == data['inputs']['mm_img'].dtype == torch.float32
    losses = model(**data, mode='loss')
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.projector.mlp[0].weight.grad.dtype == torch.bfloat16
