"""Write a SynthRef clip (a scene whose named object moves) for video propagation.

``python tools/dataset_converters/make_synthref_clip.py OUT [--frames 8] [--seed 0]
[--size 320 240] [--step 6]``: ``OUT/frames/*.jpg``, ``OUT/masks/*.png`` (the named object's
true masks) and ``OUT/clip.json`` (the expression). See ``synthref/clip.py``.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from tools.dataset_converters.synthref.clip import make_synthref_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--size', type=int, nargs=2, default=(320, 240), metavar=('W', 'H'))
    parser.add_argument('--step', type=float, default=6.0, help='pixels the object moves a frame')
    args = parser.parse_args()
    clip = make_synthref_clip(args.out, args.frames, args.seed, tuple(args.size), args.step)
    print(f'{len(clip["frames"])} frames of {args.size[0]}x{args.size[1]} in {args.out}: '
          f'"{clip["expression"]}"')


if __name__ == '__main__':
    main()
