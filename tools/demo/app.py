"""Browser demo of text-prompted segmentation: upload (or pick) an image, type expressions, see
each mask over the image with its score.

``python tools/demo/app.py [--config CONFIG] [--weights CKPT] [--tokenizer DIR]
[--dtype fp32|bf16] [--port 7860]``

Defaults: the embedded tiny model (``configs/evf_sam/evf-tiny_synthref.py``) and the checkpoint
its ``make demo`` run left (``work_dirs/evf-tiny_synthref/last_checkpoint``). Run from the
repository root (the config's tokenizer path is relative to it), then open the printed address.

This file is the command line; the parts live beside it: ``server.py`` (the FastAPI app: the
static page and the JSON API), ``service.py`` (what a request does: :class:`mmevf.apis.
TextSegInferencer` on the image and its prompts), ``payloads.py`` (uploads decoded, results
encoded) and ``embedding_lru.py`` (SAM's image embeddings of the last images, so that a user
trying expressions, points or boxes on one image pays for the encoder once).
"""
import argparse
import logging
import os
import os.path as osp
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the demo's parts are imported from the repository root
    sys.path.insert(0, str(ROOT))
if TYPE_CHECKING:
    from tools.demo.service import DemoService

DEFAULT_CONFIG = 'configs/evf_sam/evf-tiny_synthref.py'
DEFAULT_EXAMPLES = 'data/synthref/images'


def default_weights(config: str) -> str:
    """The checkpoint ``make demo`` left for ``config``: the file named by
    ``work_dirs/<config name>/last_checkpoint``; a clear error if there is none."""
    name = osp.splitext(osp.basename(config))[0]
    pointer = ROOT / 'work_dirs' / name / 'last_checkpoint'
    if not pointer.is_file():
        raise SystemExit(f'error: no checkpoint for {name}: {pointer} does not exist. Run '
                         f'`make demo` first (it trains the tiny model), or pass --weights CKPT.')
    weights = pointer.read_text().strip()
    if not osp.isfile(weights):
        raise SystemExit(f'error: {pointer} names {weights}, which does not exist. Run '
                         f'`make demo` again, or pass --weights CKPT.')
    return weights


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Browser demo: text (and point / box) prompted segmentation')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help=f'config file or name (default: {DEFAULT_CONFIG})')
    parser.add_argument('--weights', help='checkpoint (default: the one `make demo` trained, '
                        'named by work_dirs/<config name>/last_checkpoint)')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    parser.add_argument('--device', default=None, help='cpu, cuda, ... (default: auto)')
    parser.add_argument('--dtype', choices=('fp32', 'bf16'), default='fp32',
                        help='weights and inputs in float32 (default) or bfloat16')
    parser.add_argument('--host', default='127.0.0.1', help='address to listen on')
    parser.add_argument('--port', type=int, default=7860, help='port (default: 7860)')
    parser.add_argument('--examples', default=DEFAULT_EXAMPLES,
                        help=f'folder of example images (default: {DEFAULT_EXAMPLES}, if '
                        f'present)')
    parser.add_argument('--num-examples', type=int, default=6, help='examples shown')
    parser.add_argument('--cache-size', type=int, default=8,
                        help='image embeddings kept (LRU; 0 disables the cache)')
    return parser.parse_args(argv)


def build_service(args: argparse.Namespace) -> 'DemoService':
    # imported here, as in main(): a missing checkpoint is reported before torch and mmevf load
    from mmevf.apis import TextSegInferencer
    from tools.demo.service import DemoService, list_examples
    weights = args.weights or default_weights(args.config)
    if not osp.exists(weights):
        raise SystemExit(f'error: checkpoint {weights} does not exist')
    inferencer = TextSegInferencer(args.config, weights=weights, tokenizer=args.tokenizer,
                                   device=args.device, dtype=args.dtype, show_progress=False)
    return DemoService(inferencer, list_examples(args.examples, args.num_examples),
                       cache_size=args.cache_size,
                       model_name=osp.splitext(osp.basename(args.config))[0], weights=weights)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[demo] %(message)s')
    if args.weights is None:
        default_weights(args.config)  # fail before the slow imports
    import uvicorn

    from tools.demo.server import create_app
    service = build_service(args)
    app = create_app(service)
    print(f'[demo] {service.model_name} ({service.weights}); points: '
          f'{service.accepts["points"]}, boxes: {service.accepts["boxes"]}, '
          f'{len(service.examples)} examples', flush=True)
    print(f'[demo] open http://{args.host}:{args.port}/ (Ctrl+C stops)', flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level='warning')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
