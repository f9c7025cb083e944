"""EVF-SAM's image branches, tokenisation and packing reproduce the official preprocessing."""
import json
import shutil

import numpy as np
import pytest
import torch
from mmdet.structures.mask import BitmapMasks
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision import transforms as T

from mmevf.datasets.transforms import SAMResize, PackReferInputs, TokenizeText
from mmevf.models.data_preprocessors import SAMDataPreprocessor
from mmevf.utils.tokenizer import build_tokenizer


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('shape', [(427, 640), (640, 426), (333, 517), (100, 37)])
def test_image_branches_match_official_preprocessing(shape):
    bgr = random_image(*shape)
    rgb = bgr[..., ::-1].copy()
    results = SAMResize()(dict(img=bgr.copy()))

    # SAM branch: segment_anything's ResizeLongestSide on the RGB image (Pillow bilinear).
    sam = ResizeLongestSide(1024).apply_image(rgb)
    assert results['img_shape'] == sam.shape[:2]
    np.testing.assert_array_equal(results['img'][..., ::-1], sam)

    # BEiT-3 branch: ToTensor + Resize((224, 224), bicubic, antialias=None) on the tensor.
    beit = T.Compose([T.ToTensor(), T.Resize((224, 224), interpolation=3, antialias=None)])(rgb)
    torch.testing.assert_close(results['mm_img'], beit, rtol=0, atol=0)


def test_data_preprocessor_normalises_pads_and_batches_text():
    bgr = random_image(300, 200)
    results = SAMResize(sam_size=64, mm_size=32)(dict(img=bgr))
    results.update(
        img_id=1, img_path='a.jpg', ori_shape=(300, 200), text=['a', 'b c'],
        text_ids=[[0, 5, 2], [0, 6, 7, 8, 2]],
        gt_masks=BitmapMasks(np.zeros((2, 300, 200), np.uint8), 300, 200))
    packed = PackReferInputs()(results)
    second = PackReferInputs()(dict(results, text=['d'], text_ids=[[0, 9, 2]]))
    from mmengine.dataset import pseudo_collate
    preprocessor = SAMDataPreprocessor(pad_size=64, pad_token_id=1)
    out = preprocessor(pseudo_collate([packed, second]))
    inputs = out['inputs']
    assert inputs['img'].shape == (2, 3, 64, 64)
    h, w = results['img_shape']
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    rgb = torch.from_numpy(results['img'][..., ::-1].copy()).permute(2, 0, 1).float()
    torch.testing.assert_close(inputs['img'][0, :, :h, :w], (rgb - mean) / std)
    assert inputs['img'][0, :, h:, :].abs().sum() == 0 and inputs['img'][0, :, :, w:].abs().sum() == 0
    torch.testing.assert_close(inputs['mm_img'][0], (results['mm_img'] - 0.5) / 0.5)
    assert inputs['text_ids'].tolist() == [[0, 5, 2, 1, 1], [0, 6, 7, 8, 2], [0, 9, 2, 1, 1]]
    assert inputs['text_padding_mask'].tolist() == [[False] * 3 + [True] * 2, [False] * 5,
                                                    [False] * 3 + [True] * 2]
    assert inputs['expr_image_index'].tolist() == [0, 0, 1]
    assert out['data_samples'][0].batch_input_shape == (64, 64)

    # Inputs stay float32 whatever the preprocessor's buffers are: the segmentor casts them to
    # its weights' dtype (no link from the preprocessor to its model).
    out = preprocessor.to(torch.bfloat16)(pseudo_collate([packed]))
    assert out['inputs']['img'].dtype == out['inputs']['mm_img'].dtype == torch.float32

    # Masks without texts (SAMPretrainer) batch without text inputs; a mixed batch is refused.
    untexted = PackReferInputs()({k: v for k, v in results.items() if k != 'text_ids'})
    out = SAMDataPreprocessor(pad_size=64)(pseudo_collate([untexted, untexted]))
    assert set(out['inputs']) == {'img', 'mm_img'}
    with pytest.raises(ValueError, match='text_ids'):
        SAMDataPreprocessor(pad_size=64)(pseudo_collate([packed, untexted]))


def test_xlmr_ids_are_sentencepiece_ids_plus_one(xlmr_tokenizer_dir, tmp_path):
    import sentencepiece as spm
    processor = spm.SentencePieceProcessor(
        model_file=str(xlmr_tokenizer_dir / 'sentencepiece.bpe.model'))
    # an official EVF-SAM folder also ships tokenizer_config.json: both layouts load the same
    with_config = tmp_path / 'with_config'
    shutil.copytree(xlmr_tokenizer_dir, with_config)
    (with_config / 'tokenizer_config.json').write_text(
        json.dumps({'tokenizer_class': 'XLMRobertaTokenizer'}))
    for folder in (xlmr_tokenizer_dir, with_config):
        tokenizer = build_tokenizer(str(folder))
        assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id,
                tokenizer.unk_token_id) == (0, 1, 2, 3)
        for text in ['the red circle left of the blue square', 'leftmost zebra',
                     '[semantic] sky']:
            expected = [0] + [i + 1 for i in processor.encode(text)] + [2]
            assert tokenizer(text)['input_ids'] == expected


def test_tokenize_transform(xlmr_tokenizer_dir):
    transform = TokenizeText(str(xlmr_tokenizer_dir), max_length=5)
    out = transform(dict(text=['the larger triangle on the right', 'zebra']))
    assert [len(ids) for ids in out['text_ids']][0] == 5
    assert out['text_ids'][0][0] == 0 and out['text_ids'][0][-1] == 2
    whole = TokenizeText(str(xlmr_tokenizer_dir))(dict(text='the larger triangle on the right'))
    assert len(whole['text_ids']) == 1 and len(whole['text_ids'][0]) > 5
    with pytest.raises(ValueError, match='empty expression #1 for image x.jpg'):
        transform(dict(text=['zebra', '  '], img_path='x.jpg'))


def test_tokenizer_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        build_tokenizer(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='holds no tokenizer'):
        build_tokenizer(str(tmp_path))


def test_no_mm_view_for_models_without_one():
    """mm_size=None (DIT): no multimodal view is made, packed or batched."""
    img = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    results = SAMResize(sam_size=64, mm_size=None)(dict(img=img, text=['a'],
                                                          text_ids=[torch.tensor([0, 5, 2])]))
    assert 'mm_img' not in results and results['img'].shape[:2] == (64, 48)
    packed = PackReferInputs()(results)
    assert set(packed['inputs']) == {'img'}
    batch = SAMDataPreprocessor(pad_size=64)(dict(inputs=dict(img=[packed['inputs']['img']]),
                                                 data_samples=[packed['data_samples']]))
    assert set(batch['inputs']) == {'img', 'text_ids', 'text_padding_mask', 'expr_image_index'}
