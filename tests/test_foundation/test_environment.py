"""The dependency stack mmevf is built on is installed and usable."""
import importlib

import pytest
import torch


def test_mmcv_has_compiled_ops():
    import mmcv
    from mmcv.ops import nms, roi_align
    assert mmcv.__version__ == '2.1.0'
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    # roi_align of a constant map is that constant: the compiled kernel really ran.
    feats = torch.full((1, 1, 8, 8), 3.0)
    rois = torch.tensor([[0., 1., 1., 5., 5.]])
    out = roi_align(feats, rois, (2, 2), 1.0, 2, 'avg', True)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 3.0))


@pytest.mark.parametrize('module', [
    'mmdet.datasets', 'mmdet.evaluation', 'mmdet.structures.mask', 'mmseg.datasets',
    'mmseg.evaluation', 'segment_anything', 'transformers', 'deepspeed', 'pycocotools.mask'
])
def test_stack_imports(module):
    importlib.import_module(module)


def test_pinned_versions():
    import mmdet
    import mmengine
    import mmseg
    assert torch.__version__.split('+')[0] == '2.14.1'
    assert mmengine.__version__ == '0.10.7'
    assert mmdet.__version__ == '3.3.0'
    assert mmseg.__version__ == '1.2.2'


def test_setuptools_keeps_pkg_resources():
    # mmengine 0.10.7 resolves `mmdet::` bases through pkg_resources (removed in setuptools 82).
    import setuptools
    from mmengine.utils import get_installed_path
    assert int(setuptools.__version__.split('.')[0]) < 82
    assert get_installed_path('mmdet').endswith('mmdet')
