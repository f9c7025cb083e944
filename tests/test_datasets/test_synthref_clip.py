"""SynthRef clips: deterministic, the expression names one object, whose true masks follow its
recorded path frame by frame while the rest of the scene stays."""
import json

import cv2
import numpy as np
import pytest

from tools.dataset_converters.synthref.clip import make_synthref_clip


def test_clip_is_deterministic_and_masks_follow_the_object(tmp_path):
    clip = make_synthref_clip(str(tmp_path / 'a'), num_frames=6, seed=3, size=(200, 150))
    again = make_synthref_clip(str(tmp_path / 'b'), num_frames=6, seed=3, size=(200, 150))
    assert clip == again == json.loads((tmp_path / 'a' / 'clip.json').read_text())
    for name in clip['frames'] + clip['masks']:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()
    assert clip['expression'].startswith('the ') and len(clip['frames']) == 6
    moved = []
    for t, (cx, cy) in enumerate(clip['target_path']):
        mask = cv2.imread(str(tmp_path / 'a' / clip['masks'][t]), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (150, 200) and set(np.unique(mask)) == {0, 255}
        ys, xs = np.nonzero(mask)
        # the mask is the shape around its recorded centre (triangles: centroid off by r / 4)
        assert abs(xs.mean() - cx) < 12 and abs(ys.mean() - cy) < 12
        frame = cv2.imread(str(tmp_path / 'a' / clip['frames'][t]))
        assert frame.shape == (150, 200, 3)
        moved.append((cx, cy))
    steps = np.linalg.norm(np.diff(np.array(moved), axis=0), axis=1)
    assert np.allclose(steps, 6.0, atol=1e-2)  # the default step, bouncing keeps the speed


def test_clip_needs_frames(tmp_path):
    with pytest.raises(ValueError, match='num_frames must be positive'):
        make_synthref_clip(str(tmp_path), num_frames=0)
