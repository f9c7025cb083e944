"""What BaseSAMSegmentor settles for every SAM-based model: sizes derived from the image
encoder, one trainable-parameter rule, regrouping by image, inputs cast to the weights' dtype,
and the first release's registry names."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmevf.datasets  # noqa: F401
import mmevf.models  # noqa: F401
from mmevf.datasets.transforms import SAMResize
from mmevf.models import SAMDataPreprocessor, TextPromptSegmentor
from mmevf.registry import MODELS, TRANSFORMS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
SAM_TINY = str(ROOT / 'configs/sam/sam-tiny_synthref.py')


def tiny_sam_cfg(**encoder):
    cfg = Config.fromfile(SAM_TINY).model
    cfg.image_encoder.update(encoder)
    return cfg


def test_sizes_derive_from_the_image_encoder():
    init_default_scope('mmevf')
    model = MODELS.build(tiny_sam_cfg(img_size=128))  # one edit: the encoder's size
    assert model.data_preprocessor.pad_size == 128
    assert model.prompt_head.input_image_size == 128
    assert model.prompt_head.image_embedding_size == 8  # 128 / patch 16
    assert model.prompt_head.prompt_encoder.get_dense_pe().shape[-2:] == (8, 8)


@pytest.mark.parametrize('part, key, value', [
    ('prompt_head', 'image_embedding_size', 32),
    ('prompt_head', 'input_image_size', 512),
    ('data_preprocessor', 'pad_size', 512),
])
def test_disagreeing_sizes_are_refused(part, key, value):
    init_default_scope('mmevf')
    cfg = tiny_sam_cfg()
    cfg[part][key] = value
    with pytest.raises(ValueError, match=f'{key}={value} disagrees with the image encoder'):
        MODELS.build(cfg)


def test_pipeline_size_must_match_the_encoder():
    preprocessor = SAMDataPreprocessor(pad_size=64)
    image = torch.zeros(3, 48, 32, dtype=torch.uint8)  # resized for another encoder size
    with pytest.raises(ValueError, match=r'SAMResize\(sam_size=64\)'):
        preprocessor(dict(inputs=dict(img=[image])))
    with pytest.raises(ValueError, match='pad_size is unset'):
        SAMDataPreprocessor()(dict(inputs=dict(img=[image])))


def test_inputs_follow_the_weights_dtype_and_tensor_mode_runs():
    """No preprocessor-to-model link: float32 inputs reach a bf16 model cast in forward;
    SAMPretrainer has a tensor mode (its prompts come from the data samples)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    init_default_scope('mmevf')
    model = MODELS.build(tiny_sam_cfg()).eval().bfloat16()
    masks = torch.zeros(2, 256, 256, dtype=torch.bool)
    masks[0, 10:60, 20:90] = masks[1, 100:200, 100:140] = True
    sample = DetDataSample(metainfo=dict(img_shape=(256, 256), ori_shape=(256, 256),
                                         img_path='x.png'))
    sample.gt_instances = InstanceData(masks=BitmapMasks(masks.numpy(), 256, 256))
    data = model.data_preprocessor(
        dict(inputs=dict(img=[torch.zeros(3, 256, 256, dtype=torch.uint8)]),
             data_samples=[sample]))
    assert data['inputs']['img'].dtype == torch.float32
    with torch.no_grad():
        (low_res, iou), = model(**data, mode='tensor')
    assert low_res.shape == (2, 1, 64, 64) and low_res.dtype == torch.bfloat16
    assert iou.shape == (2, 1)


def test_group_by_image():
    values = torch.arange(5)
    inputs = dict(img=torch.zeros(3, 1), expr_image_index=torch.tensor([0, 0, 2, 2, 2]))
    groups = TextPromptSegmentor.group_by_image(values, inputs)
    assert [g.tolist() for g in groups] == [[0, 1], [], [2, 3, 4]]


def test_first_release_names_are_gone():
    """One name per class: the first release's aliases are not registered."""
    init_default_scope('mmevf')
    assert TRANSFORMS.get('SAMResize') is SAMResize
    assert MODELS.get('SAMDataPreprocessor') is SAMDataPreprocessor
    assert TRANSFORMS.get('EVFResize') is None
    assert MODELS.get('EVFDataPreprocessor') is None
