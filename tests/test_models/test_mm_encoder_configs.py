"""The paper's CLIP / ViLT rows (configs/evf_sam/mm_encoders/, EVF-SAM Tab. 1 / 3 / 6): each
config builds without its weights (on the ``meta`` device, as tools/analysis/count_params.py
does), counts what the encoder's Hugging Face architecture counts, differs from the BEiT-3-L
model it is compared with only in the encoder and the projector, and its pipelines and data
preprocessor carry that encoder's input size, normalisation and tokenizer."""
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from transformers import CLIPConfig, CLIPModel, ViltConfig, ViltModel

import mmevf.models  # noqa: F401
from mmevf.registry import MODELS
from tools.analysis.count_params import count

ROOT = Path(__file__).resolve().parents[2]
DIR = 'configs/evf_sam/mm_encoders/'
BEIT3L = 'configs/evf_sam/evf-beit3l_sam-h_refcoco.py'
BEIT3L_TOTAL, BEIT3L_ENCODER = 1_315_105_072, 672_702_464  # paper: 1.32B
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# config -> the row: totals, encoder, projector token, image input, preprocessing
ROWS = {
    'evf-clip-l14_sam-h_refcoco_text-only.py': dict(
        total=765_528_369, encoder=123_650_305, token='text_cls', image=False, side=None,
        max_length=77, folder='checkpoints/clip-vit-large-patch14', mean=CLIP_MEAN,
        std=CLIP_STD, pad=49407),
    'evf-clip-l14_sam-h_refcoco_late-fusion.py': dict(
        total=1_070_084_401, encoder=427_616_513, token='cls_concat', image=True, side=224,
        max_length=77, folder='checkpoints/clip-vit-large-patch14', mean=CLIP_MEAN,
        std=CLIP_STD, pad=49407),
    'evf-vilt-b32_sam-h_refcoco.py': dict(
        total=752_882_480, encoder=111_004_416, token='image_cls', image=True, side=384,
        max_length=40, folder='checkpoints/vilt-b32-mlm', mean=[0.5] * 3, std=[0.5] * 3, pad=0),
}


def load(name: str) -> Config:
    return Config.fromfile(str(ROOT / DIR / name))


def hf_count(cfg: Config) -> int:
    """The encoder's parameters counted on the Hugging Face model the config describes."""
    with torch.device('meta'):
        if cfg.model.mm_encoder.type == 'ViLTEncoder':
            model = ViltModel(ViltConfig(**cfg.vilt_config), add_pooling_layer=False)
            return sum(p.numel() for p in model.parameters())
        model = CLIPModel(CLIPConfig(**cfg.clip_config))
    if cfg.model.mm_encoder.get('with_vision', True):
        return sum(p.numel() for p in model.parameters())
    return sum(p.numel() for n, p in model.named_parameters()
               if not n.startswith(('vision_model.', 'visual_projection.')))


def test_every_config_has_a_row():
    shipped = {osp.basename(p) for p in (ROOT / DIR).glob('evf-*.py')}
    assert shipped == set(ROWS)


@pytest.fixture(scope='module')
def beit3l():
    return count(str(ROOT / BEIT3L))


@pytest.mark.parametrize('name', sorted(ROWS))
def test_builds_without_weights_and_counts(name, beit3l):
    row = ROWS[name]
    result = count(str(ROOT / DIR / name))
    modules = {k: v[0] for k, v in result['modules'].items()}
    assert result['total'] == row['total']
    assert modules['mm_encoder'] == row['encoder'] == hf_count(load(name))
    # only the encoder and the projector differ from BEiT-3-L + SAM-H (1.32B)
    assert beit3l['total'] == BEIT3L_TOTAL
    for part in ('image_encoder', 'prompt_head'):
        assert modules[part] == beit3l['modules'][part][0], part
    projector_in = {'text_cls': 1, 'image_cls': 1, 'cls_concat': 2}[row['token']]
    width = 768  # CLIP-L/14's projection_dim, ViLT-B/32's hidden size
    assert modules['projector'] == projector_in * width * width + width + width * 256 + 256
    # SAM's image encoder is the only frozen part, as in the BEiT-3 recipe
    assert result['total'] - result['trainable'] == modules['image_encoder'] == 637_026_048


def test_encoder_sizes_against_the_papers():
    """CLIP-L/14 427.6M (~428M) and ViLT-B/32 111.6M (~111M) as Hugging Face counts them; here
    ViLT's 0.59M pooler (its ITM head's input, unused) is left out."""
    clip = hf_count(load('evf-clip-l14_sam-h_refcoco_late-fusion.py'))
    vilt = hf_count(load('evf-vilt-b32_sam-h_refcoco.py'))
    assert clip == 427_616_513
    assert vilt + (768 * 768 + 768) == 111_595_008


@pytest.mark.parametrize('name', sorted(ROWS))
def test_row_switches_and_preprocessing(name):
    row = ROWS[name]
    cfg = load(name)
    with open(ROOT / DIR / name) as f:
        assert f.readline().startswith('# EVF-SAM Tab.')
    model = cfg.model
    assert model.projector.token == row['token']
    assert model.get('mm_encoder_image', True) == row['image']
    assert tuple(model.trainable) == tuple(Config.fromfile(str(ROOT / BEIT3L)).model.trainable)
    assert model.mm_encoder.pretrained == row['folder']
    preprocessor = model.data_preprocessor
    assert (preprocessor.mm_mean, preprocessor.mm_std) == (row['mean'], row['std'])
    assert preprocessor.pad_token_id == row['pad']
    # every pipeline: the encoder's input side, tokenizer folder and text length
    pipelines = [cfg.train_pipeline, cfg.test_pipeline, cfg.val_dataloader.dataset.pipeline]
    pipelines += [d.pipeline for d in cfg.train_dataloader.dataset.datasets]
    pipelines += [d.pipeline for d in cfg.test_dataloader.dataset.datasets]
    assert len(pipelines) == 3 + 4 + 8
    for pipeline in pipelines:
        steps = {s.type: s for s in pipeline}
        assert steps['SAMResize'].mm_size == row['side']
        assert steps['TokenizeText'].tokenizer == row['folder']
        assert steps['TokenizeText'].max_length == row['max_length']
    # ... and they fit the encoder the config builds
    init_default_scope('mmevf')
    with torch.device('meta'):
        encoder = MODELS.build(model.mm_encoder)
    assert encoder.img_size == row['side'] and encoder.max_text_length == row['max_length']
    preprocess = MODELS.build(preprocessor)
    mean = torch.tensor(row['mean']).view(3, 1, 1).expand(3, 4, 4)
    std = torch.tensor(row['std']).view(3, 1, 1)
    normalised = preprocess.mm_images([mean, mean + std])
    torch.testing.assert_close(normalised[0], torch.zeros(3, 4, 4))
    torch.testing.assert_close(normalised[1], torch.ones(3, 4, 4))
    if not osp.isdir(ROOT / row['folder']):  # without the weights, loading names the folder
        with pytest.raises(FileNotFoundError, match=row['folder']):
            encoder.init_weights()
