"""TextSegInferencer and tools/infer.py run a converted tiny EVF-SAM2 checkpoint. The tools run
in this process (their ``main()``): the converter's command line runs in a fresh interpreter in
test_evf_sam2_convert.py, the video command line (which loads the config as tools/infer.py does)
in conftest.py."""
import importlib.util

import mmcv
import numpy as np
import pytest
import torch
from evf_sam2_helpers import PROJECT, TINY_CONFIG, import_project, require_sam2

require_sam2()

from tests.conftest import load_tool  # noqa: E402


@pytest.fixture(scope='module')
def converted(tmp_path_factory, evf_sam2_checkpoint):
    """A tiny random EVF-SAM2 (conftest.py's) in the official layout, converted by the project's
    tool (its ``main()``)."""
    state = torch.load(evf_sam2_checkpoint, map_location='cpu')['state_dict']
    official = import_project().sam2_to_official(
        {k[len('sam2.'):]: v for k, v in state.items() if k.startswith('sam2.')})
    official.update({'mm_extractor.beit3.' + k[len('mm_encoder.'):]: v
                     for k, v in state.items() if k.startswith('mm_encoder.')})
    official.update({'text_hidden_fcs.0.' + k[len('projector.mlp.'):]: v
                     for k, v in state.items() if k.startswith('projector.mlp.')})
    assert len(official) == len(state)
    folder = tmp_path_factory.mktemp('official')
    torch.save(official, folder / 'pytorch_model.bin')
    (folder / 'config.json').write_text('{"model_type": "evf", "sam_scale": "tiny"}')
    dst = folder.parent / 'tiny_evf_sam2.pth'
    spec = importlib.util.spec_from_file_location(
        'convert_evf_sam2', PROJECT / 'tools' / 'convert_evf_sam2.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(folder), str(dst)])
    return dst, state


def test_inferencer(converted, synthref_root):
    from mmevf.apis import TextSegInferencer
    dst, state = converted
    inferencer = TextSegInferencer(str(TINY_CONFIG), weights=str(dst),
                                   tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                   show_progress=False)
    loaded = inferencer.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    result = inferencer(str(image), ['the red circle', 'leftmost square'],
                        return_datasamples=True)
    sample = result['predictions'][0]
    h, w = mmcv.imread(str(image)).shape[:2]
    assert tuple(sample.pred_instances.masks.shape) == (2, h, w)


def test_tools_infer(converted, synthref_root, tmp_path):
    dst, _ = converted
    image = sorted((synthref_root / 'images').glob('*.jpg'))[0]
    out_dir = tmp_path / 'out'
    load_tool('infer').main([str(image), 'the blue square', '--config', str(TINY_CONFIG),
                             '--weights', str(dst), '--tokenizer', str(synthref_root / 'tokenizer'),
                             '--out-dir', str(out_dir), '--device', 'cpu'])
    mask = mmcv.imread(str(out_dir / 'masks' / f'{image.stem}_0.png'), flag='unchanged')
    assert mask.shape == mmcv.imread(str(image)).shape[:2]
    assert set(np.unique(mask)) <= {0, 255}
