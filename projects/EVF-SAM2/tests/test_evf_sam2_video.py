"""EVF-SAM2 on video: the streaming tracker against sam2's own video predictor, frame 0
against the image path, bounded memory, and infer_video.py's outputs and errors; its command line,
run once, also shows that the package imports by its one name."""
import json
import os
import subprocess
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from evf_sam2_helpers import (PACKAGE, PROJECT, ROOT, TINY_CONFIG, import_project, project_env,
                              require_sam2)

require_sam2()

from tools.dataset_converters.synthref.clip import make_synthref_clip  # noqa: E402

INFER_VIDEO = PROJECT / 'tools' / 'infer_video.py'


def _tool():
    """projects/EVF-SAM2/tools/infer_video.py as a module (its main() is called in-process)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('infer_video', INFER_VIDEO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# SAM-2's input side for the tracker tests: half the tiny config's 256, a quarter of the image
# encoder's and memory attention's work per frame; SAM-2 and its video predictor are otherwise as
# configured (object pointers 16 frames back: the tracker's memory window, exercised by 20 frames)
SIZE = 128
NUM_FRAMES = 20


@pytest.fixture(scope='module')
def tracker(evf_sam2_checkpoint, synthref_root):
    from mmengine.config import Config

    from mmevf.apis import TextSegInferencer
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.model.sam2.image_size = SIZE  # no weight depends on it
    cfg.test_pipeline = [dict(t, sam_size=SIZE) if t['type'] == 'SAM2Resize' else t
                         for t in cfg.test_pipeline]
    inferencer = TextSegInferencer(cfg, weights=str(evf_sam2_checkpoint),
                                   tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                   show_progress=False)
    return import_project().EVFSAM2VideoTracker(inferencer)


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp('clip')
    return root, make_synthref_clip(str(root), num_frames=NUM_FRAMES, size=(160, 120), step=5)


def test_matches_sam2_video_predictor(tracker, clip):
    """The streaming loop = sam2's SAM2VideoPredictor (built with the video overrides the
    official EVF-SAM2 uses) fed the same frames, with frame 0 prompted as the official
    ``add_new_text`` does; 20 frames, so the tracker's memory window (16, SAM-2's reach of
    object pointers) is exercised: the frames out of it are dropped, none that SAM-2 reads."""
    from sam2.build_sam import build_sam2_video_predictor
    project = import_project()
    VideoFrames, text_prompted = project.VideoFrames, project.text_prompted
    root, meta = clip
    frames = VideoFrames(str(root / 'frames'))
    sam2 = tracker.sam2
    assert sam2.image_size == SIZE
    assert tracker.memory_window == sam2.max_obj_ptrs_in_encoder == 16
    ours = {r.frame.index: (r.logits, r.object_score)
            for r in tracker.track(frames, meta['expression'])}
    memory = tracker.memory
    assert len(memory['cond_frame_outputs']) == 1
    assert len(memory['non_cond_frame_outputs']) <= tracker.memory_window < len(frames) - 2

    predictor = build_sam2_video_predictor(
        'configs/sam2/sam2_hiera_t.yaml', None, device='cpu',
        hydra_overrides_extra=[f'++model.image_size={sam2.image_size}'])
    predictor.load_state_dict(sam2.state_dict())
    state = predictor.init_state(str(root / 'frames'))
    # the same input tensors as the image path (SAM2Resize of the config's pipeline)
    state['images'] = [tracker.preprocess(f, None)['img'][0] for f in frames]
    state['cached_features'] = {}
    with torch.inference_mode():
        inputs = tracker.preprocess(next(iter(frames)), meta['expression'])
        prompt = tracker.model.encode_prompts(inputs)
        obj_idx = predictor._obj_id_to_idx(state, 1)
        with text_prompted(predictor, prompt):  # the official add_new_text
            out, _ = predictor._run_single_frame_inference(
                inference_state=state, output_dict=state['output_dict_per_obj'][obj_idx],
                frame_idx=0, batch_size=1, is_init_cond_frame=True, point_inputs=None,
                mask_inputs=None, reverse=False, run_mem_encoder=False)
        state['temp_output_dict_per_obj'][obj_idx]['cond_frame_outputs'][0] = out
        reference = {i: masks[0, 0] for i, _, masks in predictor.propagate_in_video(state)}
    assert sorted(reference) == sorted(ours) == list(range(NUM_FRAMES))
    worst = max((ours[i][0] - reference[i]).abs().max().item() for i in ours)
    assert worst <= 1e-4, worst
    for i in ours:
        assert torch.equal(ours[i][0] > 0, reference[i] > 0), i
    assert all(score > 0 for _, score in ours.values())


def test_first_frame_equals_image_path(tracker, clip):
    root, meta = clip
    frames = import_project().VideoFrames(str(root / 'frames'))
    first = next(iter(tracker.track(frames, meta['expression'])))
    image = mmcv.imread(str(root / meta['frames'][0]))
    result = tracker.inferencer(image, meta['expression'])
    mask = result['predictions'][0]['masks'][0]
    assert first.object_score > 0
    assert mask.any() and np.array_equal((first.logits > 0).numpy(), mask)


def test_infer_video_folder_and_errors(evf_sam2_checkpoint, synthref_root, tmp_path):
    root = tmp_path / 'clip'
    meta = make_synthref_clip(str(root), num_frames=4, size=(160, 120))
    tool = _tool()
    common = ['--config', str(TINY_CONFIG), '--weights', str(evf_sam2_checkpoint),
              '--tokenizer', str(synthref_root / 'tokenizer'), '--device', 'cpu']
    out = tmp_path / 'out'
    summary = tool.main([str(root / 'frames'), meta['expression'], '--out-dir', str(out)] +
                        common)
    assert [f['frame'] for f in summary['frames']] == [f'{i:05d}' for i in range(4)]
    for i in range(4):
        mask = cv2.imread(str(out / 'masks' / f'{i:05d}.png'), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (120, 160) and set(np.unique(mask)) <= {0, 255}
        assert int((mask > 0).sum()) == summary['frames'][i]['area']
        assert cv2.imread(str(out / 'overlay' / f'{i:05d}.jpg')).shape == (120, 160, 3)
    assert json.loads((out / 'track.json').read_text())['text'] == meta['expression']
    # the same out-dir again: refused, nothing touched
    before = (out / 'masks' / '00000.png').read_bytes()
    with pytest.raises(FileExistsError, match='already holds masks'):
        tool.main([str(root / 'frames'), meta['expression'], '--out-dir', str(out)] + common)
    assert (out / 'masks' / '00000.png').read_bytes() == before
    # an unreadable frame: named; the frames before it stay written
    (root / 'frames' / '00002.jpg').write_bytes(b'not a jpeg')
    broken = tmp_path / 'broken'
    with pytest.raises(ValueError, match='cannot decode frame .*00002.jpg'):
        tool.main([str(root / 'frames'), meta['expression'], '--out-dir', str(broken)] + common)
    assert sorted(p.name for p in (broken / 'masks').iterdir()) == ['00000.png', '00001.png']
    with pytest.raises(FileNotFoundError, match='missing.mp4 does not exist'):
        tool.main([str(tmp_path / 'missing.mp4'), 'x', '--out-dir', str(tmp_path / 'o')] + common)
    (tmp_path / 'corrupt.mp4').write_bytes(b'\x00' * 1000)
    with pytest.raises(ValueError, match='cannot read video .*corrupt.mp4'):
        tool.main([str(tmp_path / 'corrupt.mp4'), 'x', '--out-dir', str(tmp_path / 'o')] +
                  common)
    with pytest.raises(SystemExit):
        tool.main([str(root / 'frames'), '  ', '--out-dir', str(tmp_path / 'o')] + common)


def test_infer_video_file(evf_sam2_checkpoint, synthref_root, tmp_path):
    """A video file in: masks per frame and an overlay video with as many frames."""
    root = tmp_path / 'clip'
    meta = make_synthref_clip(str(root), num_frames=3, size=(160, 120))
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 10, (160, 120))
    for name in meta['frames']:
        writer.write(cv2.imread(str(root / name)))
    writer.release()
    out = tmp_path / 'out'
    summary = _tool().main([
        str(video), meta['expression'], '--out-dir', str(out), '--config', str(TINY_CONFIG),
        '--weights', str(evf_sam2_checkpoint), '--tokenizer', str(synthref_root / 'tokenizer'),
        '--device', 'cpu'])
    assert len(summary['frames']) == 3
    assert sorted(p.name for p in (out / 'masks').iterdir()) == [f'{i:05d}.png'
                                                                for i in range(3)]
    written = mmcv.VideoReader(str(out / 'overlay.mp4'))
    assert written.frame_cnt == 3 and (written.width, written.height) == (160, 120)


# Imported by the command line run of ``infer_video_cli`` (PYTHONPATH) before anything else: at
# exit it reports what the interpreter imported, for the one-name check below. It only looks.
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


@pytest.fixture(scope='module')
def infer_video_cli(evf_sam2_checkpoint, synthref_root, tmp_path_factory):
    """The video command line as users type it (``PYTHONPATH=. python
    projects/EVF-SAM2/tools/infer_video.py FRAMES TEXT --config ...``), run once in a fresh
    interpreter on a 3-frame clip: its ``returncode``, ``stdout``, ``stderr``, ``out_dir`` and
    the interpreter's import ``report`` (:data:`IMPORT_OBSERVER`)."""
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


def test_cli_progress_bar(infer_video_cli):
    """The command line as users type it (conftest.py's one subprocess of the tool, on a 3-frame
    clip): the progress bar over frames, its outputs."""
    assert infer_video_cli['returncode'] == 0, infer_video_cli['stderr'][-3000:]
    assert 'Tracking' in infer_video_cli['stdout'] + infer_video_cli['stderr']
    assert '3 frames' in infer_video_cli['stdout']
    out = infer_video_cli['out_dir']
    assert sorted(p.name for p in (out / 'masks').iterdir()) == [f'{i:05d}.png' for i in range(3)]
    assert len(json.loads((out / 'track.json').read_text())['frames']) == 3


def test_one_name(infer_video_cli):
    """The package has one name: a config and a project tool, loaded as users run them
    (``PYTHONPATH=.`` from the repository root: the video command line of conftest.py, which
    loads the tiny config), import ``projects.EVF-SAM2.evf_sam2`` only; the short name
    ``evf_sam2`` (a second copy, registering EVFSAM2 twice) does not import."""
    assert infer_video_cli['returncode'] == 0, infer_video_cli['stderr'][-3000:]
    report = infer_video_cli['report']
    assert report['evfsam2_module'] == PACKAGE + '.evf_sam2'
    assert report['short_name_modules'] == []
    assert report['short_name_findable'] is False
