"""EVF-SAM2's tests: the repository importable (so is the project package, by its one name
``projects.EVF-SAM2.evf_sam2``), the repository's SynthRef fixture, and what several test modules
share: a random tiny EVF-SAM2 checkpoint. Helpers live
in ``evf_sam2_helpers`` (a uniquely named module: every ``conftest`` is imported under that one
name, so tests never import from it)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import synthref_root  # noqa: E402,F401


@pytest.fixture(scope='session')
def evf_sam2_checkpoint(tmp_path_factory):
    """A random tiny EVF-SAM2 whose object-score head says 'present' (bias +8): with random
    weights the score is near 0, and a negative one empties every video mask."""
    import torch
    from evf_sam2_helpers import TINY_CONFIG, import_project, require_sam2
    require_sam2()
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmevf.engine.runner_setup import register_all_modules
    from mmevf.registry import MODELS
    import_project()  # registers EVFSAM2 and SAM2Resize
    register_all_modules()
    init_default_scope('mmevf')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(TINY_CONFIG)).model)
    model.init_weights()
    with torch.no_grad():
        model.sam2.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_evf_sam2.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return path
