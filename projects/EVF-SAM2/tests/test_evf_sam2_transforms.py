"""SAM2Resize: the SAM-2 branch stretched to sam_size² by the official resamplers, the BEiT-3
branch as SAMResize's; the data preprocessor then normalises without padding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from evf_sam2_helpers import import_project, require_sam2

require_sam2()


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)


def test_backends(image):
    from PIL import Image
    from sam2.utils.transforms import SAM2Transforms

    from mmevf.datasets.transforms import SAMResize
    SAM2Resize = import_project().SAM2Resize
    results = {b: SAM2Resize(64, 16, backend=b).transform(dict(img=image.copy()))
               for b in ('pil', 'uint8', 'sam2')}
    for out in results.values():
        assert out['img'].shape == (64, 64, 3) and out['img_shape'] == (64, 64)
        assert out['keep_ratio'] is False and out['scale_factor'] == (64 / 53, 64 / 37)
        torch.testing.assert_close(out['mm_img'],
                                   SAMResize(64, 16).transform(dict(img=image.copy()))['mm_img'])
    pil = np.asarray(Image.fromarray(image[..., ::-1].copy()).resize((64, 64), Image.BILINEAR))
    assert np.array_equal(results['pil']['img'][..., ::-1], pil)  # channel order kept
    chw = torch.from_numpy(image).permute(2, 0, 1)[None]
    official = F.interpolate(chw, (64, 64), mode='bilinear', align_corners=False)
    assert np.array_equal(results['uint8']['img'], official[0].permute(1, 2, 0).numpy())
    # the 'sam2' backend normalised by the data preprocessor = SAM2ImagePredictor's input
    from mmevf.models import SAMDataPreprocessor
    model_module = import_project('evf_sam2')
    pre = SAMDataPreprocessor(mean=model_module.SAM2_MEAN, std=model_module.SAM2_STD,
                              pad_size=64)
    img = torch.from_numpy(results['sam2']['img']).permute(2, 0, 1)
    ours = pre.sam_images([img])[0]
    theirs = SAM2Transforms(64, mask_threshold=0.0)(image[..., ::-1].copy())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_bad_backend():
    with pytest.raises(ValueError, match='backend'):
        import_project().SAM2Resize(backend='bicubic')
