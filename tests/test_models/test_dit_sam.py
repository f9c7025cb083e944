"""DITSAM and its BERT text encoder: an official sam_vit_b-layout checkpoint loads strictly,
a tiny BERT and vocabulary built offline, the decoder ignores text padding, gradients reach
exactly the parameters each paper setting trains (dit.md P7), and the model's modes."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from transformers import BertConfig, BertModel

import mmevf.models  # noqa: F401
from mmevf.models.text_encoders import BertTextEncoder
from mmevf.registry import MODELS, TRANSFORMS
from mmevf.utils.tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / 'configs/dit/l-dit-tiny_synthref.py')
BERT_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=128, vocab_size=32, max_position_embeddings=32)
WORDS = ['the', 'red', 'blue', 'circle', 'square', 'left', 'of', 'right', 'small']


@pytest.fixture(scope='module')
def bert_vocab(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp('bert_vocab')
    (folder / 'vocab.txt').write_text(
        '\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS) + '\n')
    return folder


def tiny_model(**overrides):
    init_default_scope('mmevf')
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def tiny_batch(model, synthref_root, num_images=2):
    """Packed, preprocessed SynthRef samples through the tiny config's test pipeline."""
    cfg = Config.fromfile(TINY)
    steps = [dict(s, tokenizer=str(synthref_root / 'bert_tokenizer'))
             if s['type'] == 'TokenizeText' else s for s in cfg.test_pipeline]
    pipeline = Compose([TRANSFORMS.build(s) for s in steps])
    from mmevf.datasets import ReferSegDataset
    dataset = ReferSegDataset(
        data_root=str(synthref_root), data_prefix=dict(img_path='images/'),
        ann_file='synthref/instances.json', split_file='synthref/refs(unc).p', split='val',
        text_mode='original', pipeline=pipeline)
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(num_images)]))


# ---------------------------------------------------------------------- BERT
def test_tiny_bert_and_vocab_offline(bert_vocab, tmp_path):
    tokenizer = build_tokenizer(str(bert_vocab))  # vocab.txt only -> BERT WordPiece
    ids = tokenizer(['the red circle left of the blue square', 'small square'],
                    padding=True, return_tensors='pt')
    assert ids['input_ids'][0, 0] == tokenizer.cls_token_id and tokenizer.pad_token_id == 0
    assert tokenizer.unk_token_id not in ids['input_ids'][0].tolist()
    pad = ids['attention_mask'] == 0
    enc = BertTextEncoder(config=BERT_TINY, output_layer=1).eval()
    feats, mask = enc(ids['input_ids'], pad)
    assert feats.shape == (2, ids['input_ids'].shape[1], 64) and torch.equal(mask, pad)
    ref = enc.bert(ids['input_ids'], attention_mask=ids['attention_mask'],
                   output_hidden_states=True)
    assert torch.equal(feats, ref.hidden_states[1])  # the released code's layer 1
    last = BertTextEncoder(config=BERT_TINY, output_layer=2).eval()
    last.load_state_dict(enc.state_dict())
    torch.testing.assert_close(last(ids['input_ids'], pad)[0], ref.last_hidden_state)
    assert enc.unused_parameter_prefixes() == ('bert.pooler.', 'bert.encoder.layer.1.')
    # a transformers folder loads strictly through init_cfg ('bert' layout)
    BertModel(BertConfig(**BERT_TINY)).save_pretrained(str(tmp_path / 'bert'))

    def bert_init(folder: str) -> dict:  # scoped: no runner here
        return dict(type='mmevf.StrictPretrained', checkpoint=str(tmp_path / folder),
                    layout='bert', prefix='text_encoder.')

    loaded = BertTextEncoder(config=BERT_TINY, init_cfg=bert_init('bert'), output_layer=2)
    loaded.init_weights()
    saved = BertModel.from_pretrained(str(tmp_path / 'bert')).state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in loaded.bert.state_dict().items())
    with pytest.raises(FileNotFoundError, match='config.json'):
        BertTextEncoder(config=BERT_TINY, init_cfg=bert_init('none'),
                        output_layer=2).init_weights()
    with pytest.raises(ValueError, match='does not fit BertTextEncoder: shape mismatch'):
        BertTextEncoder(config=dict(BERT_TINY, hidden_size=32),
                        init_cfg=bert_init('bert'), output_layer=2).init_weights()
    with pytest.raises(ValueError, match='output_layer'):
        BertTextEncoder(config=BERT_TINY, output_layer=3)
    frozen = BertTextEncoder(config=BERT_TINY, output_layer=2, frozen=True).train()
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert not frozen(ids['input_ids'], pad)[0].requires_grad


# ---------------------------------------------------------------------- SAM checkpoint
def test_official_sam_vit_b_checkpoint_loads_strictly(tmp_path):
    """segment_anything's own vit_b at real size (random weights), saved as the official
    .pth is (a plain state dict), fills DITSAM's SAM parts key for key."""
    from segment_anything import sam_model_registry
    torch.manual_seed(0)
    official = sam_model_registry['vit_b']().state_dict()
    path = tmp_path / 'sam_vit_b.pth'
    torch.save(official, path)
    init_default_scope('mmevf')
    cfg = Config.fromfile(str(ROOT / 'configs/dit/l-dit_sam-b_bert-base_refcoco.py')).model
    cfg.image_encoder.init_cfg.checkpoint = cfg.prompt_head.init_cfg.checkpoint = str(path)
    cfg.text_encoder = dict(type='BertTextEncoder', config=BERT_TINY, output_layer=2)
    model = MODELS.build(cfg)
    model.init_weights()
    mine = model.state_dict()
    sam_keys = {k: k.replace('prompt_head.', '', 1) for k in mine
                if k.startswith(('image_encoder.', 'prompt_head.'))}
    assert set(sam_keys.values()) == set(official)  # SAM's keys, nothing added or missing
    # built at 512: SAM's 1024² position tables are resized once, at load
    resized = {k for k, o in sam_keys.items() if mine[k].shape != official[o].shape}
    assert resized == {'image_encoder.pos_embed'} | {
        f'image_encoder.blocks.{i}.attn.rel_pos_{a}' for i in (2, 5, 8, 11) for a in 'hw'}
    for key, official_key in sam_keys.items():
        if key not in resized:
            assert torch.equal(mine[key], official[official_key]), key
    pos = F.interpolate(official['image_encoder.pos_embed'].permute(0, 3, 1, 2), (32, 32),
                        mode='bicubic', align_corners=False).permute(0, 2, 3, 1)
    assert torch.equal(mine['image_encoder.pos_embed'], pos)
    assert mine['image_encoder.blocks.2.attn.rel_pos_h'].shape == (63, 64)
    new = {k.split('.')[0] for k in mine if k not in sam_keys}
    assert new == {'text_encoder', 'injector', 'text_to_prompt'}
    assert model.prompt_head.prompt_encoder.get_dense_pe().shape[-2:] == (32, 32)


# ---------------------------------------------------------------------- model
def test_modes_and_original_size_predictions(synthref_root):
    model = tiny_model()
    data = tiny_batch(model, synthref_root)
    inputs, samples = data['inputs'], data['data_samples']
    model.eval()
    with torch.no_grad():
        low_res = model(inputs, samples, mode='tensor')
        preds = model(inputs, samples, mode='predict')
    for (masks, ious), sample in zip(low_res, preds):
        n = len(sample.text)
        assert masks.shape == (n, 1, 64, 64) and ious.shape == (n, 1)  # 4 x the 16² grid
        assert sample.pred_instances.masks.dtype == torch.bool
        assert sample.pred_instances.masks.shape == (n, *sample.ori_shape)
        assert sample.pred_instances.scores.shape == (n, )
    model.train()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_mask_bce', 'loss_mask_dice'}
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match='mode'):
        model(inputs, samples, mode='x')


@pytest.mark.parametrize('mask_padding', [True, False])
def test_decoder_prompts_exclude_padding(mask_padding):
    """Each expression decoded in a padded batch equals it decoded alone (no padding);
    the released behaviour (padding tokens as prompts) does not."""
    model = tiny_model(**{'mask_text_padding': mask_padding,
                          'injector.mask_text_padding': mask_padding}).eval()
    torch.manual_seed(3)
    ids = torch.randint(5, 26, (2, 9))
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[1, 4:] = True
    inputs = dict(img=torch.randn(1, 3, 256, 256), text_ids=ids, text_padding_mask=pad,
                  expr_image_index=torch.zeros(2, dtype=torch.long))
    with torch.no_grad():
        batched = model.decode(inputs)[0][0]
        alone = model.decode(dict(inputs, text_ids=ids[1:, :4], text_padding_mask=pad[1:, :4],
                                  expr_image_index=inputs['expr_image_index'][:1]))[0][0]
    close = torch.allclose(batched[1:], alone, atol=1e-5)
    assert close == mask_padding


UNUSED_SAM = ('prompt_head.prompt_encoder.point_embeddings', 'prompt_head.prompt_encoder.not_a',
              'prompt_head.prompt_encoder.mask_downscaling', 'prompt_head.prompt_encoder.no_mask',
              'prompt_head.mask_decoder.iou_prediction_head',
              'prompt_head.mask_decoder.output_hypernetworks_mlps.1',
              'prompt_head.mask_decoder.output_hypernetworks_mlps.2',
              'prompt_head.mask_decoder.output_hypernetworks_mlps.3')


@pytest.mark.parametrize('trainable', [
    ('image_encoder', 'text_encoder', 'injector', 'text_to_prompt', 'prompt_head'),  # full
    ('image_encoder', 'injector', 'text_to_prompt', 'prompt_head'),  # frozen BERT
    ('text_encoder', 'injector', 'text_to_prompt', 'prompt_head'),  # frozen SAM encoder
    ('injector', 'text_to_prompt', 'prompt_head'),  # frozen SAM encoder and BERT
])
def test_p7_gradients_reach_exactly_the_trained_parameters(synthref_root, trainable):
    model = tiny_model(trainable=trainable, **{'injector.proj_dropout': 0.0})
    data = tiny_batch(model, synthref_root, num_images=1)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    sum(losses.values()).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.any()}
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    assert expected == {n for n, _ in model.named_parameters()
                        if n.startswith(trainable) and not n.startswith('text_encoder.bert.pooler')}
    assert with_grad <= expected  # nothing frozen receives a gradient
    # every trained parameter gets one, but SAM's parts a text-only single mask never uses
    assert {n for n in expected - with_grad if not n.startswith(UNUSED_SAM)} == set()
    assert all(f'injector.layer_projs.{i}.weight' in with_grad for i in range(4))
    assert 'text_to_prompt.weight' in with_grad
    assert ('image_encoder.blocks.0.attn.qkv.weight' in with_grad) == (
        'image_encoder' in trainable)
