"""SAM's image encoder: mmevf's fused attention core against segment_anything's forward.

``python tools/analysis/benchmark_sam_encoder.py [--arch vit_b] [--img-size 1024]
[--repeats 3] [--threads N] [--dtype fp32 bf16] [--memory]``

Builds one ``SAMImageEncoder`` with random weights (the relative-position tables and
``pos_embed``, zero at initialisation, filled with random values so that the rel-pos path is
exercised) and runs the same weights on one random image through

- segment_anything: ``fast_attention=False``, ``segment_anything``'s ``ImageEncoderViT.forward``
  (full (N, N) scores per head, the rel-pos terms added as another (N, N) tensor);
- sam_encoder: ``fast_attention=True``, :mod:`mmevf.models.sam.attention` (fused SDPA, the
  rel-pos bias built for a block of queries at a time);
- sam_encoder_bf16: the fast path on a bfloat16 copy of the encoder (when the CPU has bf16),

fp32 unless named (``--dtype`` picks the fast path's dtypes, both by default), interleaved
repeat after repeat after one warm-up each, so that load changes hit all alike; medians are
reported with the max |diff| of each output against segment_anything's fp32 output. The output
ends with ``sam_encoder/segment_anything: N.Nx`` and ``sam_encoder_bf16/segment_anything:
N.Nx``.

``--memory`` also measures the peak resident memory of one forward of a ViT-H encoder
(``--memory-arch``) at ``--img-size`` in a fresh process per path (``VmHWM`` after resetting it
once the encoder is built, so that building's own peak does not hide the forward's), and the
resident memory after building it (the weights).
"""
import argparse
import copy
import resource
import statistics
import subprocess
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional

import torch

from mmevf.models.sam import SAMImageEncoder


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='vit_b', choices=['vit_b', 'vit_l', 'vit_h'])
    parser.add_argument('--img-size', type=int, default=1024)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    parser.add_argument('--repeats', type=int, default=3, help='interleaved repeats')
    parser.add_argument('--dtype', nargs='+', choices=['fp32', 'bf16'], default=['fp32', 'bf16'],
                        help='dtypes of the fast path (bf16 where the CPU has it); '
                        'segment_anything\'s fp32 forward is always the reference')
    parser.add_argument('--memory', action='store_true',
                        help='peak RSS of one forward per path, each in a fresh process')
    parser.add_argument('--memory-arch', default='vit_h', choices=['vit_b', 'vit_l', 'vit_h'])
    parser.add_argument('--rss-child', choices=['segment_anything', 'sam_encoder'],
                        help=argparse.SUPPRESS)  # internal: one forward, print the RSS
    return parser.parse_args(argv)


def random_encoder(arch: str, img_size: int, fast: bool = True) -> SAMImageEncoder:
    """A frozen encoder with random weights, rel-pos tables and pos_embed non-zero."""
    torch.manual_seed(0)
    encoder = SAMImageEncoder(arch=arch, img_size=img_size, fast_attention=fast)
    with torch.no_grad():
        for name, param in encoder.named_parameters():
            if name.endswith(('rel_pos_h', 'rel_pos_w', 'pos_embed')):
                param.normal_(0, 0.1)
    return encoder.eval()


def bf16_supported() -> bool:
    """bfloat16 matrix products in hardware (AVX512-BF16 / AMX on x86, or a GPU)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def interleaved(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, List[float]]:
    """Seconds per call of each function: one warm-up call each, then ``repeats`` rounds."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        print(f'    repeat {i + 1}: ' + ', '.join(f'{name} {t[-1]:.2f} s'
                                                 for name, t in times.items()), flush=True)
    return times


def rss_mib(field: str = 'VmHWM') -> float:
    """This process's resident memory in MiB: ``VmHWM`` (peak) or ``VmRSS`` (current) from
    /proc/self/status, else the peak from ``ru_maxrss`` (KiB on Linux)."""
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith(field + ':'):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5), so that the peak measured
    next is the forward's, not the model building's."""
    try:
        with open('/proc/self/clear_refs', 'w') as refs:
            refs.write('5')
        return True
    except OSError:
        return False


def rss_child(args: argparse.Namespace) -> None:
    """One forward of a fresh ``--memory-arch`` encoder; prints the resident memory after
    building it and the peak during the forward (MiB), and whether the peak was reset."""
    encoder = random_encoder(args.memory_arch, args.img_size,
                             fast=args.rss_child == 'sam_encoder')
    image = torch.randn(1, 3, args.img_size, args.img_size)
    reset = reset_peak_rss()
    built = rss_mib('VmRSS')
    with torch.no_grad():
        encoder(image)
    print(f'{built:.0f} {rss_mib():.0f} {int(reset)}')


def peak_memory(args: argparse.Namespace) -> None:
    for path in ('segment_anything', 'sam_encoder'):
        child = [sys.executable, __file__, '--rss-child', path, '--memory-arch',
                 args.memory_arch, '--img-size', str(args.img_size)]
        out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        built, peak, reset = (float(v) for v in out.split()[-3:])
        note = '' if reset else ' (peak since start: building included)'
        print(f'  peak RSS {args.memory_arch} {args.img_size}² {path:16s} {peak / 1024:6.2f} GiB '
              f'(after building: {built / 1024:.2f} GiB, the forward adds '
              f'{(peak - built) / 1024:.2f} GiB){note}', flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings('ignore')
    if args.rss_child:
        return rss_child(args)
    encoder = random_encoder(args.arch, args.img_size)
    image = torch.randn(1, 3, args.img_size, args.img_size)
    bf16 = 'bf16' in args.dtype and bf16_supported()
    print(f'SAMImageEncoder {args.arch} at {args.img_size}², random weights (rel-pos tables '
          f'non-zero), batch 1, {torch.get_num_threads()} threads, median of {args.repeats} '
          f'interleaved repeats'
          f'{"" if bf16 else "; no bf16 (not supported here or not in --dtype)"}', flush=True)

    def run(model: SAMImageEncoder, fast: bool, x: torch.Tensor) -> torch.Tensor:
        model.fast_attention = fast
        return model(x)

    fns = {'segment_anything': lambda: run(encoder, False, image)}
    if 'fp32' in args.dtype:
        fns['sam_encoder'] = lambda: run(encoder, True, image)
    if bf16:
        encoder_bf16 = copy.deepcopy(encoder).bfloat16()
        image_bf16 = image.bfloat16()
        fns['sam_encoder_bf16'] = lambda: run(encoder_bf16, True, image_bf16)
    with torch.no_grad():
        reference = fns['segment_anything']()
        diffs = {name: (fn().float() - reference).abs().max().item()
                 for name, fn in fns.items() if name != 'segment_anything'}
        times = interleaved(fns, args.repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in median.items():
        diff = f'  max |diff| {diffs[name]:.1e}' if name in diffs else ''
        print(f'  {name:17s} {seconds:7.2f} s{diff}')
    print(f'  (output max |value| {reference.abs().max().item():.2f})')
    if args.memory:
        peak_memory(args)
    for name in fns:
        if name != 'segment_anything':
            print(f'{name}/segment_anything: '
                  f'{median["segment_anything"] / median[name]:.1f}x')


if __name__ == '__main__':
    main()
