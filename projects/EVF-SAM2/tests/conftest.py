"""EVF-SAM2's tests: the repository importable (so is the project package, by its one name
``projects.EVF-SAM2.evf_sam2``), the repository's SynthRef fixture, and what several test modules
share: a random tiny EVF-SAM2 checkpoint and the one run of the video command line. Helpers live
in ``evf_sam2_helpers`` (a uniquely named module: every ``conftest`` is imported under that one
name, so tests never import from it)."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import synthref_root  # noqa: E402,F401

# Imported by the command line run below (PYTHONPATH) before anything else: at exit it reports
# what the interpreter imported, the one-name check of test_evf_sam2_configs.py. It only looks.
IMPORT_OBSERVER = '''
import atexit, importlib.util, json, os, sys


def _report():
    from mmevf.registry import MODELS
    with open(os.environ['EVF_SAM2_IMPORT_REPORT'], 'w') as f:
        json.dump(dict(
            evfsam2_module=MODELS.get('EVFSAM2').__module__,
            short_name_modules=[n for n in sys.modules if n.split('.')[0] == 'evf_sam2'],
            short_name_findable=importlib.util.find_spec('evf_sam2') is not None), f)


atexit.register(_report)
'''


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


@pytest.fixture(scope='session')
def infer_video_cli(evf_sam2_checkpoint, synthref_root, tmp_path_factory):
    """The video command line as users type it (``PYTHONPATH=. python
    projects/EVF-SAM2/tools/infer_video.py FRAMES TEXT --config ...``), run once in a fresh
    interpreter on a 3-frame clip: its ``returncode``, ``stdout``, ``stderr``, ``out_dir`` and
    the interpreter's import ``report`` (:data:`IMPORT_OBSERVER`)."""
    import json
    import os
    import subprocess

    from evf_sam2_helpers import PROJECT, TINY_CONFIG, project_env, require_sam2
    require_sam2()
    from tools.dataset_converters.synthref.clip import make_synthref_clip
    tmp = tmp_path_factory.mktemp('infer_video_cli')
    meta = make_synthref_clip(str(tmp / 'clip'), num_frames=3, size=(160, 120))
    (tmp / 'observer').mkdir()
    (tmp / 'observer' / 'sitecustomize.py').write_text(IMPORT_OBSERVER)
    report = tmp / 'imports.json'
    env = dict(os.environ, COLUMNS='120', EVF_SAM2_IMPORT_REPORT=str(report))
    env['PYTHONPATH'] = os.pathsep.join([str(tmp / 'observer'), project_env()['PYTHONPATH']])
    proc = subprocess.run(
        [sys.executable, str(PROJECT / 'tools' / 'infer_video.py'), str(tmp / 'clip' / 'frames'),
         meta['expression'], '--config', str(TINY_CONFIG), '--weights',
         str(evf_sam2_checkpoint), '--tokenizer', str(synthref_root / 'tokenizer'),
         '--out-dir', str(tmp / 'out'), '--device', 'cpu'],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    return dict(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr,
                out_dir=tmp / 'out',
                report=json.loads(report.read_text()) if report.is_file() else None)
