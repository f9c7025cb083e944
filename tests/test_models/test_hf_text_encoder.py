"""HFTextEncoder: any ``transformers`` text encoder for DIT, loaded by config from a local
folder (tiny random RoBERTa / DistilBERT saved with ``save_pretrained``), BERT by default."""
from pathlib import Path

import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel,
                          RobertaConfig, RobertaModel)

import mmevf.models  # noqa: F401
from mmevf.models.text_encoders import HFTextEncoder
from mmevf.registry import MODELS, TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]
TINY_DIT = str(ROOT / 'configs/dit/l-dit-tiny_synthref.py')
MODELS_TINY = {
    # name: (model, pad id, the list of layers)
    'roberta': (lambda: RobertaModel(RobertaConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=40, pad_token_id=1)), 1, 'encoder.layer'),
    'distilbert': (lambda: DistilBertModel(DistilBertConfig(
        vocab_size=64, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
        max_position_embeddings=40, pad_token_id=0)), 0, 'transformer.layer'),
}


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    out = {}
    for name, (build, _, _) in MODELS_TINY.items():
        torch.manual_seed(0)
        out[name] = tmp_path_factory.mktemp(name)
        build().save_pretrained(str(out[name]))
    return out


def padded_batch(pad_id: int):
    torch.manual_seed(1)
    ids = torch.randint(3, 40, (2, 7))
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    ids[pad] = pad_id
    return ids, pad


@pytest.mark.parametrize('name', sorted(MODELS_TINY))
def test_features_equal_the_models_own_forward(name, folders):
    _, pad_id, layers = MODELS_TINY[name]
    folder = str(folders[name])
    reference = type(MODELS_TINY[name][0]()).from_pretrained(folder).eval()
    encoder = HFTextEncoder(pretrained=folder)  # the architecture from the folder
    encoder.init_weights()
    encoder.eval()
    assert encoder.embed_dims == 32 and encoder.output_layer == 2  # default: the last layer
    ids, pad = padded_batch(pad_id)
    with torch.no_grad():
        feats, mask = encoder(ids, pad)
        ref = reference(input_ids=ids, attention_mask=(~pad).long(), output_hidden_states=True)
        alone, _ = encoder(ids[1:, :4])
    assert torch.equal(feats, ref.last_hidden_state) and torch.equal(mask, pad)
    assert (feats[1:, :4] - alone).abs().max() <= 1e-6  # padding is masked out
    first = HFTextEncoder(pretrained=folder, output_layer=1)
    first.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        assert torch.equal(first.eval()(ids, pad)[0], ref.hidden_states[1])
    pooler = ('model.pooler.', ) if name == 'roberta' else ()
    assert encoder.unused_parameter_prefixes() == pooler
    assert first.unused_parameter_prefixes() == pooler + (f'model.{layers}.1.', )
    assert all(any(n.startswith(p) for n, _ in first.named_parameters())
               for p in first.unused_parameter_prefixes())


def test_bert_default_config_checks_and_errors(folders, tmp_path):
    with torch.device('meta'):
        default = HFTextEncoder()
        bert_base = BertModel(BertConfig())
    assert type(default.model) is BertModel  # BERT-base (bert-base-uncased's architecture)
    assert sum(p.numel() for p in default.parameters()) == sum(
        p.numel() for p in bert_base.parameters()) == 109_482_240
    tiny = HFTextEncoder(config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=40))
    assert type(tiny.model) is BertModel and tiny.embed_dims == 32
    # a config dict is checked against the folder (aliases resolved: dim = hidden_size)
    folder = str(folders['distilbert'])
    assert HFTextEncoder(config=dict(hidden_size=32), pretrained=folder).embed_dims == 32
    with pytest.raises(ValueError, match='hidden_size: 64 vs 32'):
        HFTextEncoder(config=dict(hidden_size=64), pretrained=folder)
    with pytest.raises(ValueError, match="model_type: 'roberta' vs 'distilbert'"):
        HFTextEncoder(config=dict(model_type='roberta'), pretrained=folder)
    missing = str(tmp_path / 'roberta-base')
    with pytest.raises(FileNotFoundError, match='roberta-base'):
        HFTextEncoder(pretrained=missing)
    unloaded = HFTextEncoder(config=dict(model_type='roberta', hidden_size=32,
                                         num_hidden_layers=1, num_attention_heads=4,
                                         intermediate_size=64), pretrained=missing)
    with pytest.raises(FileNotFoundError, match='roberta-base'):
        unloaded.init_weights()
    with pytest.raises(ValueError, match=r'output_layer must be in \[0, 2\]'):
        HFTextEncoder(pretrained=folder, output_layer=3)
    frozen = HFTextEncoder(pretrained=folder, frozen=True).train()
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())


def test_dit_sam_with_distilbert(folders, synthref_root):
    """The tiny DIT with a DistilBERT text encoder (layer 1 of 2): loss and predict run, the
    unused layer is frozen and the others train."""
    init_default_scope('mmevf')
    cfg = Config.fromfile(TINY_DIT)
    cfg.merge_from_dict(dict(model=dict(text_encoder=dict(
        _delete_=True, type='HFTextEncoder', pretrained=str(folders['distilbert']),
        output_layer=1))))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.text_to_prompt.in_features == 32  # the DistilBERT width
    steps = [dict(s, tokenizer=str(synthref_root / 'bert_tokenizer'))
             if s['type'] == 'TokenizeText' else s for s in cfg.test_pipeline]
    from mmevf.datasets import ReferSegDataset
    dataset = ReferSegDataset(
        data_root=str(synthref_root), data_prefix=dict(img_path='images/'),
        ann_file='synthref/instances.json', split_file='synthref/refs(unc).p', split='val',
        text_mode='original', pipeline=Compose([TRANSFORMS.build(s) for s in steps]))
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]))
    inputs, samples = data['inputs'], data['data_samples']
    assert int(inputs['text_ids'].max()) < 64  # SynthRef's BERT vocabulary fits the model
    model.eval()
    with torch.no_grad():
        feats, _ = model.text_encoder(inputs['text_ids'], inputs['text_padding_mask'])
        reference = DistilBertModel.from_pretrained(str(folders['distilbert'])).eval()
        ref = reference(input_ids=inputs['text_ids'],
                        attention_mask=(~inputs['text_padding_mask']).long(),
                        output_hidden_states=True).hidden_states[1]
        preds = model(inputs, samples, mode='predict')
    assert torch.equal(feats, ref)
    for sample in preds:
        assert sample.pred_instances.masks.shape == (len(sample.text), *sample.ori_shape)
    model.train()
    losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    unused = 'text_encoder.model.transformer.layer.1.'
    for name, param in model.named_parameters():
        if name.startswith('text_encoder.'):
            assert param.requires_grad == (not name.startswith(unused)), name
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum()}
    assert 'text_encoder.model.embeddings.word_embeddings.weight' in grads
    assert 'text_encoder.model.transformer.layer.0.ffn.lin1.weight' in grads
