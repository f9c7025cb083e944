"""Segment what a text names on a clip's first frame and track it through the clip (EVF-SAM2).

``PYTHONPATH=. python projects/EVF-SAM2/tools/infer_video.py VIDEO TEXT --config CONFIG
--weights CKPT [--tokenizer DIR] --out-dir DIR [--device cpu]``

VIDEO is a folder of frames (numbered frames, e.g. ``00000.jpg``, in numeric order; other
names sorted) or a video file. The text prompts frame 0 (BEiT-3 + SAM-2, as the image path);
SAM-2's memory carries the object through the following frames. Frames are read, segmented and
written one at a time (memory stays flat with the clip's length), each frame's SAM-2 image
embedding computed once. Written as they come:

- ``DIR/masks/{frame}.png``: the mask (0 / 255) at the frame's size;
- ``DIR/overlay/{frame}.jpg`` (a folder of frames) or ``DIR/overlay.mp4`` (a video file): the
  mask over the frame with the text, drawn as ``tools/infer.py`` draws an image;
- ``DIR/track.json`` at the end: the text and, per frame, SAM-2's object score and the mask's
  area.

A frame that does not decode stops the run with an error naming it; what was written before
stays. An ``DIR`` holding masks or overlays already is refused (nothing is overwritten).
"""
import argparse
import importlib
import json
import os
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np
from rich.progress import track

from mmevf.apis import TextSegInferencer

# the project package by its one name, with the repository root importable (PYTHONPATH=.);
# importing it registers EVFSAM2 and SAM2Resize
evf_sam2 = importlib.import_module('projects.EVF-SAM2.evf_sam2')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video', help='folder of frames, or a video file')
    parser.add_argument('text', help='what to segment on the first frame')
    parser.add_argument('--config', required=True, help='EVF-SAM2 config file')
    parser.add_argument('--weights', required=True, help='EVF-SAM2 checkpoint (.pth)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--out-dir', required=True, help='folder for masks and overlays')
    parser.add_argument('--device', default=None, help='cpu, cuda, ... (default: auto)')
    return parser.parse_args(argv)


def check_out_dir(out_dir: str) -> None:
    """Refuse an output folder that holds this tool's outputs already."""
    existing = [name for name in ('masks', 'overlay', 'overlay.mp4', 'track.json')
                if osp.exists(osp.join(out_dir, name))
                and not (osp.isdir(osp.join(out_dir, name))
                         and not os.listdir(osp.join(out_dir, name)))]
    if existing:
        raise FileExistsError(f'{out_dir} already holds {", ".join(existing)}: choose another '
                              f'--out-dir or move them (nothing is overwritten)')


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if not args.text.strip():
        raise SystemExit('error: the text is empty')
    frames = evf_sam2.VideoFrames(args.video)  # a missing or unreadable video is named here
    check_out_dir(args.out_dir)
    inferencer = TextSegInferencer(args.config, weights=args.weights, tokenizer=args.tokenizer,
                                   device=args.device, show_progress=False)
    tracker = evf_sam2.EVFSAM2VideoTracker(inferencer)
    os.makedirs(osp.join(args.out_dir, 'masks'), exist_ok=True)
    if not frames.is_video_file:
        os.makedirs(osp.join(args.out_dir, 'overlay'), exist_ok=True)
    writer = None
    summary = dict(video=args.video, text=args.text, frames=[])
    try:
        for result in track(tracker.track(frames, args.text), total=len(frames),
                            description='Tracking'):
            frame = result.frame
            mask = (result.logits > 0).cpu().numpy()
            cv2.imwrite(osp.join(args.out_dir, 'masks', f'{frame.name}.png'),
                        mask.astype(np.uint8) * 255)
            # the image path's picture (mask, text, legend), by the inferencer's visualizer
            drawn = np.ascontiguousarray(inferencer.visualizer.draw_expression(
                frame.image[..., ::-1], args.text, mask)[..., ::-1])
            if frames.is_video_file:
                if writer is None:
                    height, width = drawn.shape[:2]
                    writer = cv2.VideoWriter(osp.join(args.out_dir, 'overlay.mp4'),
                                             cv2.VideoWriter_fourcc(*'mp4v'), frames.fps,
                                             (width, height))
                writer.write(drawn)
            else:
                cv2.imwrite(osp.join(args.out_dir, 'overlay', f'{frame.name}.jpg'), drawn)
            summary['frames'].append(dict(frame=frame.name, object_score=result.object_score,
                                          area=int(mask.sum())))
    finally:
        if writer is not None:  # what was tracked so far stays a playable video
            writer.release()
    with open(osp.join(args.out_dir, 'track.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'{len(summary["frames"])} frames: masks/ and '
          f'{"overlay.mp4" if frames.is_video_file else "overlay/"} in {args.out_dir}')
    return summary


if __name__ == '__main__':
    main()
