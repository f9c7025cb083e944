"""Export an EVF-SAM model to ONNX: encode the image once, prompt many times.

``python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out-dir DIR [--opset 17] [--int8]
[--tokenizer DIR]``

CONFIG is a config file or name (e.g. ``evf-tiny_synthref``, ``evf-beit3b_sam-b_refcoco``) of
the SAM-1 family; CHECKPOINT its weights (as ``tools/infer.py --weights`` takes them). DIR gets
``image_encoder.onnx``, ``text_encoder.onnx``, ``mask_decoder.onnx``, ``deploy.json``,
``tokenizer/`` and ``predict.py``; with ``--int8`` also ``image_encoder_int8.onnx`` and
``text_encoder_int8.onnx`` (ONNX Runtime's dynamic quantisation of the encoders' linear layers;
the decoder stays fp32). The folder runs on its own with ``onnxruntime``, ``numpy``, Pillow and
the tokenizer library::

    python DIR/predict.py IMAGE "expression" ... --out-dir OUT

and in mmevf as ``tools/infer.py IMAGE "expression" --backend onnxruntime --model-dir DIR
--out-dir OUT`` (``TextSegInferencer(DIR, backend='onnxruntime')``). The work is
:func:`mmevf.deploy.export.export_onnx`.
"""
import argparse
import time
from typing import List, Optional

from mmevf.deploy.export import DEFAULT_OPSET, INT8_WEIGHT_TYPE, export_from_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file, or config name (e.g. evf-tiny_synthref)')
    parser.add_argument('checkpoint', help='checkpoint file (or EVF-SAM folder)')
    parser.add_argument('--out-dir', required=True, help='the export folder')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset (17)')
    parser.add_argument('--int8', action='store_true',
                        help='also write the int8 (dynamically quantised) encoders')
    parser.add_argument('--int8-weight-type', choices=('QInt8', 'QUInt8'),
                        default=INT8_WEIGHT_TYPE, help='weight type of the int8 encoders')
    parser.add_argument('--tokenizer', help="tokenizer folder replacing the config's")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    deploy = export_from_config(args.config, args.checkpoint, args.out_dir,
                                tokenizer=args.tokenizer, opset=args.opset, int8=args.int8,
                                int8_weight_type=args.int8_weight_type)
    print(f'exported {deploy["model"]["config"]} in {time.perf_counter() - start:.1f} s')
    return deploy


if __name__ == '__main__':
    main()
