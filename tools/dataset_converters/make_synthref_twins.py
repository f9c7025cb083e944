"""Write SynthRef's multi-task twins (its scenes as an ADE20K-layout semantic set, a
PartImageNet-layout COCO part set and ATR-layout stick figures) for the tiny multi-task config.

``python tools/dataset_converters/make_synthref_twins.py data/synthref_twins --seed 1``

The prompts of the twins are in SynthRef's tokenizer (``make_synthref.py`` trains it on them).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # the generator is imported from the repository root
    sys.path.insert(0, ROOT)
from tools.dataset_converters.synthref import make_synthref_twins  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="Write SynthRef's multi-task twins")
    parser.add_argument('out', help='output folder (gets semantic/, parts/, humanparsing/)')
    parser.add_argument('--num-images', type=int, default=300, help='scenes per twin')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--force', action='store_true', help='write into an existing folder')
    args = parser.parse_args()
    if osp.exists(osp.join(args.out, 'semantic')) and not args.force:
        raise FileExistsError(f'{args.out} already holds the twins; pass --force to rewrite them')
    for twin, splits in make_synthref_twins(args.out, args.num_images, args.seed).items():
        print(f'{twin:>12}: ' + ', '.join(f'{split} {n} images' for split, n in splits.items()))
    print(f'SynthRef twins written to {args.out}')


if __name__ == '__main__':
    main()
