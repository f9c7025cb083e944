"""CLIP and ViLT as EVF-SAM's multimodal encoders (EVF-SAM Tab. 1 / 3 / 6).

Tiny random-weight ``transformers`` models are saved with ``save_pretrained`` (with their
tokenizers, as the released folders hold them), loaded through ``CLIPEncoder`` /
``ViLTEncoder``, and compared with ``transformers``' own forward on the same inputs; then each
encoder prompts a tiny ``EVFSAM`` with ``EVFProjector`` unchanged.
"""
import json
from pathlib import Path

import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from transformers import (BertTokenizer, CLIPConfig, CLIPModel, CLIPTokenizer, ViltConfig,
                          ViltModel)

import mmevf.models  # noqa: F401
from mmevf.models.mm_encoders import CLIPEncoder, ViLTEncoder
from mmevf.registry import MODELS, TRANSFORMS
from mmevf.utils.tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TINY_EVF = str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')
TEXTS = ['the red circle left of the blue square', 'the small square']
SIDE, PATCH = 64, 16  # the tiny EVF-SAM's multimodal view: 4 x 4 patches
NV = (SIDE // PATCH)**2 + 1
# CLIP's byte-level BPE: a few merges on top of the 256 byte symbols (every text encodes)
MERGES = [('t', 'h'), ('th', 'e</w>'), ('r', 'e'), ('re', 'd</w>'), ('s', 'q'), ('sq', 'u')]


def byte_symbols():
    """The 256 printable symbols byte-level BPE (GPT-2, CLIP) maps the bytes to."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) +
                 list(range(ord('®'), ord('ÿ') + 1)))
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def clip_tokenizer() -> CLIPTokenizer:
    symbols = byte_symbols()
    vocab = ['<|startoftext|>', '<|endoftext|>'] + symbols + [s + '</w>' for s in symbols]
    vocab += [a + b for a, b in MERGES]
    # transformers 5 takes the vocabulary and merges themselves (file arguments are ignored)
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=MERGES)


def tiny_clip_config(vocab_size: int) -> CLIPConfig:
    return CLIPConfig(
        projection_dim=24,
        text_config=dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, image_size=SIDE, patch_size=PATCH))


def tiny_vilt_config(vocab_size: int) -> ViltConfig:
    return ViltConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, image_size=SIDE,
                      patch_size=PATCH)


@pytest.fixture(scope='module')
def clip_folder(tmp_path_factory) -> Path:
    """A CLIP folder as openai/clip-vit-* ships: model and tokenizer together."""
    folder = tmp_path_factory.mktemp('clip')
    tokenizer = clip_tokenizer()
    torch.manual_seed(0)
    CLIPModel(tiny_clip_config(len(tokenizer))).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope='module')
def vilt_folder(tmp_path_factory, synthref_root) -> Path:
    """A ViLT folder as dandelin/vilt-b32-mlm ships: model and BERT tokenizer (SynthRef's
    WordPiece vocabulary) together."""
    folder = tmp_path_factory.mktemp('vilt')
    tokenizer = build_tokenizer(str(synthref_root / 'bert_tokenizer'))
    torch.manual_seed(1)
    ViltModel(tiny_vilt_config(len(tokenizer))).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def tokenize(folder: Path, texts=TEXTS):
    """(ids, padding mask) of ``texts`` right-padded, as SAMDataPreprocessor batches them."""
    out = build_tokenizer(str(folder))(texts, padding=True, return_tensors='pt')
    return out['input_ids'], out['attention_mask'] == 0


def loaded(encoder):
    encoder.init_weights()
    return encoder.eval()


# ---------------------------------------------------------------------- tokenizers
def test_build_tokenizer_loads_clip_and_bert_folders(clip_folder, vilt_folder, tmp_path):
    original = clip_tokenizer()
    clip = build_tokenizer(str(clip_folder))  # save_pretrained: tokenizer.json + config
    ids = clip(TEXTS[0])['input_ids']
    assert ids == original(TEXTS[0])['input_ids']
    assert ids[0] == clip.bos_token_id == 0 and ids[-1] == clip.eos_token_id == 1
    assert clip.convert_ids_to_tokens(ids[1:3]) == ['the</w>', 'red</w>']  # merges applied
    # the released folders' older files: vocab.json + merges.txt + tokenizer_config.json
    legacy = tmp_path / 'clip_legacy'
    legacy.mkdir()
    (legacy / 'vocab.json').write_text(json.dumps(original.get_vocab()))
    (legacy / 'merges.txt').write_text(
        '#version: 0.2\n' + '\n'.join(f'{a} {b}' for a, b in MERGES) + '\n')
    (legacy / 'tokenizer_config.json').write_text(json.dumps({'tokenizer_class': 'CLIPTokenizer'}))
    assert build_tokenizer(str(legacy))(TEXTS[0])['input_ids'] == ids
    # ViLT: BERT's uncased WordPiece, saved by save_pretrained
    bert = build_tokenizer(str(vilt_folder))
    assert isinstance(bert, BertTokenizer) and bert.pad_token_id == 0
    ids = bert('The red circle')['input_ids']
    assert bert.convert_ids_to_tokens(ids) == ['[CLS]', 'the', 'red', 'circle', '[SEP]']


# ---------------------------------------------------------------------- CLIP
def test_clip_tokens_are_clips_pooled_embeddings(clip_folder):
    reference = CLIPModel.from_pretrained(str(clip_folder)).eval()
    encoder = loaded(CLIPEncoder(pretrained=str(clip_folder)))
    assert (encoder.embed_dims, encoder.num_vision_tokens) == (24, NV)
    ids, pad = tokenize(clip_folder)
    assert pad[1].any() and not pad[0].any()  # the second text is padded
    torch.manual_seed(0)
    images = torch.randn(2, 3, SIDE, SIDE)
    with torch.no_grad():
        tokens = encoder(images, ids, pad)
        image_embed = reference.get_image_features(pixel_values=images).pooler_output
        text_out = reference.get_text_features(input_ids=ids, attention_mask=(~pad).long())
        vision_states = reference.vision_model(pixel_values=images).last_hidden_state
        text_states = reference.text_model(
            input_ids=ids, attention_mask=(~pad).long()).last_hidden_state
        alone = reference.get_text_features(input_ids=ids[1:, :int((~pad[1]).sum())])
    assert tokens.shape == (2, NV + ids.shape[1], 24)
    # image_cls (0) and text_cls (Nv) are CLIP's own image / text embeddings, bit for bit
    assert torch.equal(tokens[:, 0], image_embed)
    assert torch.equal(tokens[:, NV], text_out.pooler_output)
    # CLIP pools at <|endoftext|>, not at position 0: the slot holds the pooled state
    first = reference.text_projection(text_states[:, 0])
    assert (tokens[:, NV] - first).abs().max() > 1e-2
    # the other positions: patches and text tokens through CLIP's heads
    patches = reference.visual_projection(reference.vision_model.post_layernorm(vision_states))
    torch.testing.assert_close(tokens[:, 1:NV], patches[:, 1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(tokens[:, NV + 1:],
                               reference.text_projection(text_states[:, 1:]), rtol=0, atol=1e-6)
    # padding: the padded text gives its unpadded embedding
    assert (tokens[1, NV] - alone.pooler_output[0]).abs().max() <= 1e-6
    # text-only and image-only are the two halves
    with torch.no_grad():
        assert torch.equal(encoder(None, ids, pad), tokens[:, NV:])
        assert torch.equal(encoder(images), tokens[:, :NV])


def test_clip_text_only_holds_the_text_tower(clip_folder):
    full = loaded(CLIPEncoder(pretrained=str(clip_folder)))
    text_only = loaded(CLIPEncoder(pretrained=str(clip_folder), with_vision=False))
    assert text_only.num_vision_tokens == 0
    names = {n for n, _ in text_only.named_parameters()}
    assert not any(n.startswith(('clip.vision_model.', 'clip.visual_projection.')) for n in names)
    expected = sum(p.numel() for n, p in full.named_parameters()
                   if not n.startswith(('clip.vision_model.', 'clip.visual_projection.')))
    assert sum(p.numel() for p in text_only.parameters()) == expected
    ids, pad = tokenize(clip_folder)
    with torch.no_grad():
        assert torch.equal(text_only(None, ids, pad), full(None, ids, pad))
    with pytest.raises(ValueError, match='without an image branch'):
        text_only(torch.zeros(2, 3, SIDE, SIDE), ids, pad)


def test_clip_config_and_folder(clip_folder, tmp_path):
    arch = tiny_clip_config(10).to_dict()
    # no folder yet: built from the config (random weights); loading names the folder
    missing = str(tmp_path / 'clip-vit-large-patch14')
    encoder = CLIPEncoder(config=dict(projection_dim=24, text_config=arch['text_config'],
                                      vision_config=arch['vision_config']), pretrained=missing)
    assert encoder.embed_dims == 24 and encoder.num_vision_tokens == NV
    with pytest.raises(FileNotFoundError, match='clip-vit-large-patch14'):
        encoder.init_weights()
    with pytest.raises(FileNotFoundError, match='clip-vit-large-patch14'):
        CLIPEncoder(pretrained=missing)  # nothing to build from
    # the folder present: the config's keys must agree with its config.json
    agreeing = dict(projection_dim=24, vision_config=dict(patch_size=PATCH))
    assert CLIPEncoder(config=agreeing, pretrained=str(clip_folder)).embed_dims == 24
    with pytest.raises(ValueError, match=r'vision_config.patch_size: 8 vs 16'):
        CLIPEncoder(config=dict(vision_config=dict(patch_size=8)), pretrained=str(clip_folder))
    # and a config object builds without weights
    assert CLIPEncoder(config=tiny_clip_config(10)).num_vision_tokens == NV


def test_clip_input_errors(clip_folder):
    encoder = CLIPEncoder(pretrained=str(clip_folder)).eval()
    with pytest.raises(ValueError, match=rf'\(B, C, {SIDE}, {SIDE}\)'):
        encoder(torch.zeros(1, 3, 32, 32), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match='longer than the 64'):
        encoder(None, torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match='needs images, text_ids or both'):
        encoder()


# ---------------------------------------------------------------------- ViLT
def identity_sampling(monkeypatch):
    """ViLT's patch embedding draws its patch order with ``torch.multinomial``; drawing all
    patches in order makes ``ViltModel``'s own forward deterministic, for the comparison."""
    def ordered(weights, num_samples, replacement=False, **kwargs):
        assert not replacement and int(num_samples) == len(weights)  # all patches kept
        return torch.arange(int(num_samples), device=weights.device)
    monkeypatch.setattr(torch, 'multinomial', ordered)


@pytest.mark.parametrize('side', [SIDE, 2 * SIDE])  # 2x: position tables resampled as ViLT does
def test_vilt_tokens_are_vilts_reordered(vilt_folder, monkeypatch, side):
    reference = ViltModel.from_pretrained(str(vilt_folder)).eval()
    encoder = loaded(ViLTEncoder(pretrained=str(vilt_folder), img_size=side))
    num_vision = (side // PATCH)**2 + 1
    assert encoder.num_vision_tokens == num_vision and encoder.embed_dims == 32
    ids, pad = tokenize(vilt_folder)
    length = ids.shape[1]
    torch.manual_seed(0)
    images = torch.randn(2, 3, side, side)
    inputs = dict(input_ids=ids, attention_mask=(~pad).long(), token_type_ids=torch.zeros_like(ids),
                  pixel_values=images, pixel_mask=torch.ones(2, side, side, dtype=torch.long))
    with torch.no_grad():
        tokens = encoder(images, ids, pad)
        shuffled = reference(**inputs).last_hidden_state  # patches in a random order
        identity_sampling(monkeypatch)
        ordered = reference(**inputs).last_hidden_state
    # ViLT's sequence is text first; ours vision first, [CLS] at 0 and at Nv
    assert tokens.shape == (2, num_vision + length, 32)
    assert torch.equal(tokens, torch.cat([ordered[:, length:], ordered[:, :length]], dim=1))
    # without the fixed order only the patch order differs (up to fp32 summation order)
    torch.testing.assert_close(tokens[:, num_vision:], shuffled[:, :length], rtol=0, atol=1e-5)
    torch.testing.assert_close(tokens[:, 0], shuffled[:, length], rtol=0, atol=1e-5)
    patches = tokens[:, 1:num_vision]
    assert (patches - shuffled[:, length + 1:]).abs().max() > 1e-3  # shuffled, really
    torch.testing.assert_close(patches.sort(dim=1).values,
                               shuffled[:, length + 1:].sort(dim=1).values, rtol=0, atol=1e-5)


def test_vilt_padding_and_single_modalities(vilt_folder):
    encoder = loaded(ViLTEncoder(pretrained=str(vilt_folder)))
    ids, pad = tokenize(vilt_folder)
    real = int((~pad[1]).sum())
    torch.manual_seed(0)
    images = torch.randn(2, 3, SIDE, SIDE)
    with torch.no_grad():
        tokens = encoder(images, ids, pad)
        alone = encoder(images[1:], ids[1:, :real])
    # padding is masked out: the padded expression's tokens equal it encoded alone
    assert (tokens[1:, :NV + real] - alone).abs().max() <= 1e-6
    reference = ViltModel.from_pretrained(str(vilt_folder)).eval()
    with torch.no_grad():
        text_only = encoder(None, ids, pad)
        image_only = encoder(images)
        # a modality left out contributes no tokens: ViltModel with an empty image sequence
        expected = reference(input_ids=ids, attention_mask=(~pad).long(),
                             image_embeds=torch.zeros(2, 0, 32),
                             pixel_mask=torch.ones(2, 0, dtype=torch.long)).last_hidden_state
    assert text_only.shape == (2, ids.shape[1], 32) and image_only.shape == (2, NV, 32)
    assert torch.equal(text_only, expected)


def test_vilt_errors(vilt_folder, tmp_path):
    encoder = ViLTEncoder(pretrained=str(vilt_folder)).eval()
    assert encoder.max_text_length == 40  # ViLT's text position table
    with pytest.raises(ValueError, match=r'41 tokens is longer than the 40.*max_length=40'):
        encoder(torch.zeros(1, 3, SIDE, SIDE), torch.ones(1, 41, dtype=torch.long))
    with pytest.raises(ValueError, match=rf'\(B, C, {SIDE}, {SIDE}\)'):
        encoder(torch.zeros(1, 3, 2 * SIDE, 2 * SIDE), torch.ones(1, 4, dtype=torch.long))
    missing = str(tmp_path / 'vilt-b32-mlm')
    with pytest.raises(FileNotFoundError, match='vilt-b32-mlm'):
        ViLTEncoder(pretrained=missing)
    no_weights = ViLTEncoder(config=dict(hidden_size=32, num_hidden_layers=1,
                                         num_attention_heads=4, intermediate_size=64),
                             pretrained=missing)
    assert no_weights.num_vision_tokens == (384 // 32)**2 + 1  # ViLT-B/32 at 384²
    with pytest.raises(FileNotFoundError, match='vilt-b32-mlm'):
        no_weights.init_weights()


# ---------------------------------------------------------------------- in EVF-SAM
ENCODERS = {
    # name: (mm_encoder, projector token, mm_encoder_image, preprocessor)
    'clip-late-fusion': (dict(type='CLIPEncoder'), 'cls_concat', True,
                         dict(mm_mean=[0.48145466, 0.4578275, 0.40821073],
                              mm_std=[0.26862954, 0.26130258, 0.27577711], pad_token_id=1)),
    'clip-text-only': (dict(type='CLIPEncoder', with_vision=False), 'text_cls', False,
                       dict(pad_token_id=1)),
    'vilt': (dict(type='ViLTEncoder'), 'image_cls', True, dict(pad_token_id=0)),
}


@pytest.mark.parametrize('name', sorted(ENCODERS))
def test_encoder_prompts_evf_sam(name, clip_folder, vilt_folder, synthref_root):
    """The tiny EVF-SAM with CLIP / ViLT instead of BEiT-3 (EVFProjector unchanged): its
    prompts are the projector applied to the encoder's pooled tokens; loss and predict run and
    the encoder trains."""
    mm_encoder, token, with_image, preprocessor = ENCODERS[name]
    folder = str(clip_folder if mm_encoder['type'] == 'CLIPEncoder' else vilt_folder)
    init_default_scope('mmevf')
    cfg = Config.fromfile(TINY_EVF)
    cfg.merge_from_dict(dict(model=dict(
        data_preprocessor=preprocessor, mm_encoder_image=with_image,
        mm_encoder=dict(_delete_=True, pretrained=folder, **mm_encoder),
        projector=dict(token=token))))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    steps = [dict(s, tokenizer=folder) if s['type'] == 'TokenizeText' else s
             for s in cfg.test_pipeline]
    steps = [dict(s, mm_size=SIDE if with_image else None) if s['type'] == 'SAMResize' else s
             for s in steps]
    from mmevf.datasets import ReferSegDataset
    dataset = ReferSegDataset(
        data_root=str(synthref_root), data_prefix=dict(img_path='images/'),
        ann_file='synthref/instances.json', split_file='synthref/refs(unc).p', split='val',
        text_mode='original', pipeline=Compose([TRANSFORMS.build(s) for s in steps]))
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    assert ('mm_img' in inputs) == with_image

    model.eval()
    with torch.no_grad():
        prompts = model.encode_prompts(inputs)
        tokens = model.mm_encoder(inputs['mm_img'][inputs['expr_image_index']]
                                  if with_image else None,
                                  inputs['text_ids'], inputs['text_padding_mask'])
    num_vision = model.mm_encoder.num_vision_tokens if with_image else 0
    picked = {'image_cls': tokens[:, :1], 'text_cls': tokens[:, num_vision:num_vision + 1],
              'cls_concat': torch.cat([tokens[:, :1], tokens[:, num_vision:num_vision + 1]], -1)}
    torch.testing.assert_close(prompts, model.projector.mlp(picked[token]), rtol=0, atol=0)
    if mm_encoder['type'] == 'CLIPEncoder':  # the pooled text embedding prompts SAM
        reference = CLIPModel.from_pretrained(folder).eval()
        with torch.no_grad():
            text_embed = reference.get_text_features(
                input_ids=inputs['text_ids'],
                attention_mask=(~inputs['text_padding_mask']).long()).pooler_output
        torch.testing.assert_close(tokens[:, num_vision], text_embed, rtol=0, atol=1e-6)
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    for sample in preds:
        n = len(sample.text)
        assert sample.pred_instances.masks.shape == (n, *sample.ori_shape)

    model.train()
    losses = model(inputs, samples, mode='loss')
    # the tiny EVF-SAM's grounding loss works on these prompts too
    assert set(losses) == {'loss_mask_bce', 'loss_mask_dice', 'loss_grounding_bce',
                           'loss_grounding_dice'}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum()}
    assert any(n.startswith('mm_encoder.') for n in grads)
    if not with_image:
        assert not any('vision' in n for n in grads)
