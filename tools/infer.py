"""Segment what expressions describe in an image, optionally helped by points and a box.

``python tools/infer.py IMAGE ["expression" ...] [--point X,Y[,LABEL] ...] [--box X1,Y1,X2,Y2]
--config CONFIG --weights CKPT [--tokenizer DIR] --out-dir DIR [--device cpu]
[--dtype fp32|bf16]``

``python tools/infer.py IMAGE ["expression" ...] ... --backend onnxruntime --model-dir EXPORT
--out-dir DIR [--dtype fp32|int8]``: the same with an ONNX export of the model
(``tools/deployment/export_onnx.py``) run by ONNX Runtime; ``--dtype int8`` takes its
quantised encoders (an export made with ``--int8``).

CONFIG is a config file or a config name (e.g. ``evf-tiny_synthref``), looked up in configs/ of
the checkout or, with mmevf installed from a wheel, in the package's ``.mim/configs``. IMAGE is
an image file or a folder of images (every image gets every expression). For each image and
expression i, ``DIR/vis/{stem}_{i}.png`` shows the mask over the image with the expression
written on it and ``DIR/masks/{stem}_{i}.png`` is the binary mask (0 / 255);
``DIR/preds/{stem}.json`` lists the expressions, scores and mask files. All expressions of an
image share one image-encoder pass. ``[semantic] {class}`` prompts are passed as they are.

With a model that has a no-target head (generalized referring: an expression may name nothing
in the image), an expression it finds without target is printed as ``no target (score 0.93)``
(the head's probability) instead of its mask's score and area; its mask file is empty, its
overlay says so, and the JSON adds ``no_target`` / ``no_target_scores`` for every expression.

Points and boxes are in original-image pixels and prompt SAM's decoder together with the text
(models that support it: EVF-SAM). ``--point`` (repeatable; LABEL 1 foreground, the default, or
0 background) adds all its points to **every** expression; so does one ``--box``. Without any
expression, the points / box alone are the prompt: one mask, or one mask per ``--box`` when it
is repeated (each with all the points). With expressions, ``--box`` may be given once only.
Options and expressions may be interleaved: every argument that is not an option or an
option's value is an expression (the first is IMAGE).
"""
import argparse
import os.path as osp
from typing import List, Optional, Tuple

from mmevf.apis import TextSegInferencer
from mmevf.apis.sample_prompts import describe_prompt
from mmevf.apis.text_seg_inferencer import BACKENDS
from mmevf.visualization import no_target_label


def _numbers(value: str, count: Tuple[int, ...], form: str) -> Tuple[float, ...]:
    """'1,2.5,3' -> (1.0, 2.5, 3.0), with ``len`` in ``count``; else an argparse error."""
    try:
        numbers = tuple(float(v) for v in value.split(','))
    except ValueError:
        numbers = ()
    if len(numbers) not in count:
        raise argparse.ArgumentTypeError(f'expected {form}, got {value!r}')
    return numbers


def parse_point(value: str) -> Tuple[float, ...]:
    """``X,Y`` or ``X,Y,LABEL`` (LABEL 1 foreground, 0 background) -> a point tuple."""
    point = _numbers(value, (2, 3), 'X,Y or X,Y,LABEL')
    if len(point) == 3 and point[2] not in (0, 1):
        raise argparse.ArgumentTypeError(f'point label must be 1 (foreground) or 0 '
                                         f'(background), got {value!r}')
    return point


def parse_box(value: str) -> Tuple[float, ...]:
    return _numbers(value, (4, ), 'X1,Y1,X2,Y2')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Text-prompted segmentation of an image')
    parser.add_argument('image', help='image file, or a folder of images')
    parser.add_argument('expressions', nargs='*',
                        help='referring expressions (none: the points / box alone)')
    parser.add_argument('--point', type=parse_point, action='append', default=[],
                        metavar='X,Y[,LABEL]',
                        help='a point prompt for every expression, in original-image pixels; '
                             'LABEL 1 foreground (default) or 0 background; repeatable')
    parser.add_argument('--box', type=parse_box, action='append', default=[],
                        metavar='X1,Y1,X2,Y2',
                        help='a box prompt for every expression (once), or without '
                             'expressions one mask per --box (repeatable)')
    parser.add_argument('--config',
                        help='config file, or config name (e.g. evf-tiny_synthref); pytorch')
    parser.add_argument('--weights', help='checkpoint file (or EVF-SAM folder); pytorch')
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help='pytorch (default: --config, --weights) or onnxruntime '
                        '(--model-dir: an export of tools/deployment/export_onnx.py)')
    parser.add_argument('--model-dir', help='the ONNX export folder (--backend onnxruntime)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--out-dir', required=True, help='folder for overlays and masks')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: auto)')
    parser.add_argument('--dtype', choices=('fp32', 'bf16', 'int8'), default='fp32',
                        help='weights and inputs in float32 (default) or bfloat16 (pytorch); '
                        'int8: the quantised encoders of an ONNX export (onnxruntime)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    args = parser.parse_intermixed_args(argv)  # expressions may follow options too
    if args.backend == 'pytorch':
        missing = [f'--{name}' for name in ('config', 'weights') if not getattr(args, name)]
        if missing or args.model_dir:
            parser.error(f'--backend pytorch needs {" and ".join(missing)}' if missing else
                         '--model-dir is for --backend onnxruntime')
        if args.dtype == 'int8':
            parser.error('--dtype int8 is for --backend onnxruntime (an export made with '
                         '--int8)')
    else:
        if not args.model_dir or args.config or args.weights:
            parser.error('--backend onnxruntime takes --model-dir (the export folder), not '
                         '--config / --weights')
        if args.dtype == 'bf16':
            parser.error('--backend onnxruntime runs fp32 or int8')
    if not (args.expressions or args.point or args.box):
        parser.error('give an expression, --point or --box')
    if args.expressions and len(args.box) > 1:
        parser.error(f'--box given {len(args.box)} times with expressions: an expression takes '
                     f'one box (repeat --box without expressions for one mask per box)')
    return args


def prompts(args: argparse.Namespace) -> Tuple[list, list, list]:
    """The expressions of one image: texts (None: no text), points and boxes, one entry per
    expression."""
    points = list(args.point) or None
    if args.expressions:
        box = args.box[0] if args.box else None
        return (list(args.expressions), [points] * len(args.expressions),
                [box] * len(args.expressions))
    boxes = list(args.box) or [None]
    return [None] * len(boxes), [points] * len(boxes), boxes


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    onnx = args.backend == 'onnxruntime'
    inferencer = TextSegInferencer(
        args.model_dir if onnx else args.config, weights=args.weights,
        tokenizer=args.tokenizer, device=args.device, dtype=args.dtype,
        show_progress=osp.isdir(args.image), backend=args.backend)
    texts, points, boxes = prompts(args)
    # a folder stands for its images, each getting every expression (and its points / box)
    results = inferencer(args.image, texts, points=points, boxes=boxes,
                         batch_size=args.batch_size, out_dir=args.out_dir)
    for result in results['predictions']:
        height, width = result['masks'].shape[1:]
        print(f'{result["img_path"]} ({width}x{height})')
        # only a model with a no-target head reports it
        no_target = result.get('no_target') or [False] * len(result['texts'])
        for i, (text, score, mask, expr_points, box) in enumerate(zip(
                result['texts'], result['scores'], result['masks'], result['points'],
                result['boxes'])):
            stem = f'{result["stem"]}_{i}.png'
            geometry = describe_prompt(None, expr_points, box)
            prompt = ' + '.join(([f'"{text}"'] if text is not None else []) +
                                ([geometry] if geometry else []))
            if no_target[i]:
                # the mask is empty by the head's decision: its score and area say nothing
                status = no_target_label(result['no_target_scores'][i])
            else:
                status = f'score {score:.3f}  {mask.mean() * 100:5.1f}% of the image'
            print(f'  [{i}] {status}  vis/{stem}  masks/{stem}  {prompt}')
    print(f'written to {args.out_dir}')
    return results


if __name__ == '__main__':
    main()
