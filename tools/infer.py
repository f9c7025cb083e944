"""Segment what expressions describe in an image.

``python tools/infer.py IMAGE "expression" ["expression" ...] --config CONFIG --weights CKPT
[--tokenizer DIR] --out-dir DIR [--device cpu] [--bf16]``

CONFIG is a config file or a config name (e.g. ``evf-tiny_synthref``), looked up in configs/ of
the checkout or, with mmevf installed from a wheel, in the package's ``.mim/configs``. IMAGE is
an image file or a folder of images (every image gets every expression). For each image and
expression i, ``DIR/vis/{stem}_{i}.png`` shows the mask over the image with the expression
written on it and ``DIR/masks/{stem}_{i}.png`` is the binary mask (0 / 255);
``DIR/preds/{stem}.json`` lists the expressions, scores and mask files. All expressions of an
image share one image-encoder pass. ``[semantic] {class}`` prompts are passed as they are.
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmevf.apis import TextSegInferencer
from mmevf.apis.inference_inputs import IMAGE_SUFFIXES


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Text-prompted segmentation of an image')
    parser.add_argument('image', help='image file, or a folder of images')
    parser.add_argument('expressions', nargs='+', help='one or more referring expressions')
    parser.add_argument('--config', required=True,
                        help='config file, or config name (e.g. evf-tiny_synthref)')
    parser.add_argument('--weights', required=True, help='checkpoint file (or EVF-SAM folder)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--out-dir', required=True, help='folder for overlays and masks')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: auto)')
    parser.add_argument('--bf16', action='store_true', help='bfloat16 weights and inputs')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    return parser.parse_args(argv)


def list_images(path: str) -> List[str]:
    """``path`` itself, or the image files of the folder ``path`` (sorted)."""
    if not osp.isdir(path):
        return [path]  # a missing / unreadable file is reported by the inferencer
    images = sorted(osp.join(path, name) for name in os.listdir(path)
                    if name.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise FileNotFoundError(f'no image ({", ".join(IMAGE_SUFFIXES)}) in folder {path}')
    return images


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    images = list_images(args.image)
    inferencer = TextSegInferencer(
        args.config, weights=args.weights, tokenizer=args.tokenizer, device=args.device,
        bf16=args.bf16, show_progress=len(images) > 1)
    results = inferencer(images, [args.expressions] * len(images), batch_size=args.batch_size,
                         out_dir=args.out_dir)
    for result in results['predictions']:
        height, width = result['masks'].shape[1:]
        print(f'{result["img_path"]} ({width}x{height})')
        for i, (text, score, mask) in enumerate(
                zip(result['texts'], result['scores'], result['masks'])):
            stem = f'{result["stem"]}_{i}.png'
            print(f'  [{i}] score {score:.3f}  {mask.mean() * 100:5.1f}% of the image  '
                  f'vis/{stem}  masks/{stem}  "{text}"')
    print(f'written to {args.out_dir}')
    return results


if __name__ == '__main__':
    main()
