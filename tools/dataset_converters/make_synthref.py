"""Generate SynthRef, the embedded default dataset, in the refer / RefCOCO layout.

``python tools/dataset_converters/make_synthref.py data/synthref --num-images 600 --seed 0``
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the generator is imported from the repository root
    sys.path.insert(0, ROOT)
from tools.dataset_converters.synthref import make_synthref  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='Write the SynthRef dataset')
    parser.add_argument('out', help='output folder (data_root of the SynthRef configs)')
    parser.add_argument('--num-images', type=int, default=600)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='write into an existing folder')
    args = parser.parse_args()
    if osp.exists(osp.join(args.out, 'synthref', 'instances.json')) and not args.force:
        raise FileExistsError(f'{args.out} already holds SynthRef; pass --force to rewrite it')
    counts = make_synthref(args.out, args.num_images, args.seed)
    for split, c in counts.items():
        print(f'{split:>6}: {c["images"]:5d} images {c["refs"]:5d} refs '
              f'{c["sentences"]:6d} sentences')
    print(f'SynthRef written to {args.out}')


if __name__ == '__main__':
    main()
