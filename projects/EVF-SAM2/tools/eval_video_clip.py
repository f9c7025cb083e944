"""Track a SynthRef clip's named object and score every frame against its true mask.

``PYTHONPATH=. python projects/EVF-SAM2/tools/eval_video_clip.py CLIP --config CONFIG --weights CKPT
[--tokenizer DIR] [--device cpu]``

CLIP is a folder written by ``tools/dataset_converters/make_synthref_clip.py`` (``frames/``,
``masks/``, ``clip.json`` with the expression). Prints the IoU of every frame, their mean,
the time per frame and the process's peak resident memory (what stays flat with the clip's
length when frames are streamed).
"""
import argparse
import importlib
import json
import os.path as osp
import resource
import time
from typing import List, Optional

import cv2
import numpy as np

from mmevf.apis import TextSegInferencer

# the project package by its one name, with the repository root importable (PYTHONPATH=.);
# importing it registers EVFSAM2 and SAM2Resize
evf_sam2 = importlib.import_module('projects.EVF-SAM2.evf_sam2')


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


def main(argv: Optional[List[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('clip', help='folder of make_synthref_clip.py')
    parser.add_argument('--config', required=True)
    parser.add_argument('--weights', required=True)
    parser.add_argument('--tokenizer')
    parser.add_argument('--device', default=None)
    args = parser.parse_args(argv)
    with open(osp.join(args.clip, 'clip.json')) as f:
        meta = json.load(f)
    inferencer = TextSegInferencer(args.config, weights=args.weights, tokenizer=args.tokenizer,
                                   device=args.device, show_progress=False)
    tracker = evf_sam2.EVFSAM2VideoTracker(inferencer)
    frames = evf_sam2.VideoFrames(osp.join(args.clip, 'frames'))
    ious, start = [], time.perf_counter()
    for result in tracker.track(frames, meta['expression']):
        gt = cv2.imread(osp.join(args.clip, meta['masks'][result.frame.index]),
                        cv2.IMREAD_GRAYSCALE) > 0
        ious.append(mask_iou((result.logits > 0).numpy(), gt))
    seconds = (time.perf_counter() - start) / len(ious)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f'"{meta["expression"]}", {len(ious)} frames')
    print('IoU per frame: ' + ' '.join(f'{v * 100:.1f}' for v in ious))
    print(f'mean IoU {np.mean(ious) * 100:.2f}  {seconds:.3f} s/frame  '
          f'peak RSS {peak_mib:.0f} MiB')
    return dict(ious=ious, seconds_per_frame=seconds, peak_rss_mib=peak_mib)


if __name__ == '__main__':
    main()
