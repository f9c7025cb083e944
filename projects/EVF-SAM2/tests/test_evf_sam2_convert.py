"""A random-weight checkpoint in the official EVF-SAM2 layout converts, loads strictly and
gives the masks of a reference forward on the same weights: ``sam2``'s own
``SAM2ImagePredictor`` with the text embedding injected as the official EVF-SAM2 does."""
import json
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from evf_sam2_helpers import PROJECT, TINY_CONFIG, import_project, require_sam2, run_command

require_sam2()

from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmevf.engine.runner_setup import register_all_modules  # noqa: E402
from mmevf.registry import DATASETS, MODELS  # noqa: E402

SAM2_CONFIG = 'configs/sam2/sam2_hiera_t.yaml'
# SAM-2's input side: the tiny config's (SAM-2's own 1024 costs 16 times the image encoder for
# the same weights: no tensor of the layout depends on it)
SIZE = 256


def parity_cfg(synthref_root) -> Config:
    """The tiny config at SAM-2's input side ``SIZE``, with SAM2ImagePredictor's resampler and
    the official projector token (the image [CLS])."""
    import_project()  # registers EVFSAM2 and SAM2Resize
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.sam2.image_size = SIZE
    cfg.model.projector.token = 'image_cls'
    pipeline = []
    for t in cfg.test_pipeline:
        if t['type'] == 'SAM2Resize':
            t = dict(t, sam_size=SIZE, backend='sam2')
        if t['type'] == 'TokenizeText':
            t = dict(t, tokenizer=str(synthref_root / 'tokenizer'))
        pipeline.append(t)
    cfg.test_pipeline = pipeline
    return cfg


@pytest.fixture(scope='module')
def official(synthref_root, tmp_path_factory):
    """(official folder, its state dict, the sam2 model the SAM-2 part comes from)."""
    from sam2.build_sam import build_sam2

    sam2_to_official = import_project().sam2_to_official
    register_all_modules()
    init_default_scope('mmevf')
    torch.manual_seed(0)
    cfg = parity_cfg(synthref_root)
    sam2 = build_sam2(SAM2_CONFIG, None, device='cpu', mode='eval',
                      hydra_overrides_extra=[f'++model.image_size={SIZE}'])
    beit3 = MODELS.build(cfg.model.mm_encoder)
    beit3.init_weights()
    dim = beit3.embed_dims
    state = sam2_to_official(sam2.state_dict())
    state.update({f'mm_extractor.beit3.{k}': v for k, v in beit3.state_dict().items()})
    fc = [torch.nn.Linear(dim, dim), torch.nn.Linear(dim, 256)]
    state.update({'text_hidden_fcs.0.0.weight': fc[0].weight.data,
                  'text_hidden_fcs.0.0.bias': fc[0].bias.data,
                  'text_hidden_fcs.0.2.weight': fc[1].weight.data,
                  'text_hidden_fcs.0.2.bias': fc[1].bias.data})
    folder = tmp_path_factory.mktemp('evf_sam2_official')
    torch.save(state, folder / 'pytorch_model.bin')
    (folder / 'config.json').write_text(json.dumps(dict(
        model_type='evf', hidden_size=dim, out_dim=256, sam_scale='tiny',
        mm_extractor_scale='tiny')))
    model_file = synthref_root / 'tokenizer' / 'sentencepiece.bpe.model'
    (folder / 'sentencepiece.bpe.model').write_bytes(model_file.read_bytes())
    return folder, state, sam2, cfg


def test_official_layout_keys(official):
    _, state, sam2, _ = official
    fuser = [k for k in state if k.startswith('visual_model.memory_encoder.fuser.layers.')
             and k.count('.') == 5]
    assert sorted(fuser) == ['visual_model.memory_encoder.fuser.layers.0.weight',
                             'visual_model.memory_encoder.fuser.layers.1.weight']
    assert sum(k.startswith('visual_model.') for k in state) == len(sam2.state_dict())


def test_convert_refuses_unknown_keys_and_sam1():
    convert_evf_sam2_state_dict = import_project().convert_evf_sam2_state_dict
    good = {'visual_model.sam_mask_decoder.iou_token.weight': torch.zeros(1)}
    assert list(convert_evf_sam2_state_dict(good)) == ['sam2.sam_mask_decoder.iou_token.weight']
    with pytest.raises(ValueError, match='outside the EVF-SAM2 layout'):
        convert_evf_sam2_state_dict({**good, 'lm_head.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='SAM-1'):
        convert_evf_sam2_state_dict({'visual_model.mask_decoder.iou_token.weight': torch.zeros(1)})


def test_convert_load_strict_and_parity(official, synthref_root, tmp_path):
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    folder, state, sam2, cfg = official
    dst = tmp_path / 'evf_sam2_tiny.pth'
    out = run_command([sys.executable, str(PROJECT / 'tools' / 'convert_evf_sam2.py'),
                       str(folder), str(dst)])
    assert f'converted {len(state)} tensors' in out
    assert (tmp_path / 'evf_sam2_tiny_tokenizer' / 'sentencepiece.bpe.model').is_file()

    model = MODELS.build(cfg.model).eval()
    converted = torch.load(dst, map_location='cpu')['state_dict']
    model.load_state_dict(converted, strict=True)  # every key, no more, no less

    dataset = DATASETS.build(dict(
        type='ReferSegDataset', data_root=str(synthref_root),
        data_prefix=dict(img_path='images/'), ann_file='synthref/instances.json',
        split_file='synthref/refs(unc).p', split='val', text_mode='original',
        pipeline=cfg.test_pipeline))
    data = model.data_preprocessor(pseudo_collate([dataset[0]]))
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        (logits, scores), = model.mask_logits(inputs, samples)

        # reference: SAM2ImagePredictor's image path on the original weights, the text
        # embedding from the official tensors, injected as EVF-SAM2's inference() does
        predictor = SAM2ImagePredictor(sam2)
        # its feature sizes are written for 1024²
        predictor._bb_feat_sizes = [(SIZE // 4, SIZE // 4), (SIZE // 8, SIZE // 8),
                                    (SIZE // 16, SIZE // 16)]
        rgb = cv2.imread(samples[0].img_path)[..., ::-1].copy()
        predictor.set_image(rgb)
        tokens = model.mm_encoder(inputs['mm_img'][inputs['expr_image_index']],
                                  inputs['text_ids'], inputs['text_padding_mask'])
        feat = F.linear(F.relu(F.linear(tokens[:, :1], state['text_hidden_fcs.0.0.weight'],
                                        state['text_hidden_fcs.0.0.bias'])),
                        state['text_hidden_fcs.0.2.weight'], state['text_hidden_fcs.0.2.bias'])
        ref_logits = []
        for text in feat:  # one expression at a time, as the official inference
            sparse, dense = sam2.sam_prompt_encoder(points=None, boxes=None, masks=None)
            sparse = torch.cat([sparse, text[None]], dim=1)
            low, iou, _, _ = sam2.sam_mask_decoder(
                image_embeddings=predictor._features['image_embed'],
                image_pe=sam2.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=True, repeat_image=False,
                high_res_features=predictor._features['high_res_feats'])
            best = torch.argsort(iou[0], descending=True)[0]
            low = low[:, best:best + 1]
            ref_logits.append(predictor._transforms.postprocess_masks(
                low, predictor._orig_hw[-1])[0, 0])
        ref = torch.stack(ref_logits)
    assert logits.shape == ref.shape == (len(feat), *rgb.shape[:2])
    diff = (logits - ref).abs().max().item()
    print(f'max |logit diff| = {diff:.3g} over {ref.numel()} logits '
          f'(range {ref.min():.3g} .. {ref.max():.3g})')
    assert diff <= 1e-4
    assert torch.equal(logits > 0, ref > 0) or (((logits > 0) != (ref > 0)).float().mean()
                                                < 1e-4)
    assert np.isfinite(scores.numpy()).all()
