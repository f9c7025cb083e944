"""Generate SynthRef-G, SynthRef with gRefCOCO's single- / multi- / no-target expressions, in
ReLA's gRefCOCO layout (``GReferSegDataset``). See ``synthref/grefer.py``.

``python tools/dataset_converters/make_synthref_g.py data/synthref_g --num-images 100 --seed 0``
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the generator is imported from the repository root
    sys.path.insert(0, ROOT)
from tools.dataset_converters.synthref.grefer import make_synthref_g  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description='Write the SynthRef-G dataset')
    parser.add_argument('out', help='output folder (data_root of GReferSegDataset)')
    parser.add_argument('--num-images', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='write into a non-empty folder')
    args = parser.parse_args()
    counts = make_synthref_g(args.out, args.num_images, args.seed, force=args.force)
    for split, c in counts.items():
        print(f'{split:>6}: {c["images"]:5d} images {c["refs"]:5d} refs, sentences: '
              f'{c["single"]:5d} single- {c["multi"]:5d} multi- {c["none"]:5d} no-target')
    print(f'SynthRef-G written to {args.out}')


if __name__ == '__main__':
    main()
