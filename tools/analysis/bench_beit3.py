"""Speed of ``BEiT3MultiwayEncoder`` against torchscale's ``BEiT3`` at equal weights and outputs.

``python tools/analysis/bench_beit3.py --arch base --batch 7 --text-len 20``

Both models get the same random weights; the script checks that their outputs agree, then
times forward passes (fp32, ``torch.inference_mode``, CPU unless ``--device`` says otherwise),
alternating the two models so that drifts in machine load affect both alike. Needs torchscale
(a test-only dependency).

``--profile`` also splits one forward pass of each model (``torch.profiler``, self CPU time) into
matrix products (linear layers, attention, the patch convolution) and everything else, and
prints the ceiling: the speed-up mmevf would have over torchscale's best time if everything but
its matrix products cost nothing. At equal outputs both run the same products, so where they
dominate, no implementation can beat that ceiling.
"""
import argparse
import time

import torch

from mmevf.models.mm_encoders import BEiT3MultiwayEncoder
from mmevf.models.mm_encoders.beit3 import ARCHS


def build_pair(arch: str, vocab_size: int, device: str):
    from torchscale.architecture.config import EncoderConfig
    from torchscale.model.BEiT3 import BEiT3
    dims = ARCHS[arch]
    reference = BEiT3(EncoderConfig(
        img_size=224, patch_size=16, vocab_size=vocab_size, multiway=True,
        layernorm_embedding=False, normalize_output=True, no_output_layer=True,
        drop_path_rate=0.0, mlp_ratio=4, encoder_embed_dim=dims['embed_dims'],
        encoder_layers=dims['num_layers'], encoder_attention_heads=dims['num_heads'],
        encoder_ffn_embed_dim=dims['ffn_dims']))
    ours = BEiT3MultiwayEncoder(arch=arch, vocab_size=vocab_size)
    ours.load_state_dict(reference.state_dict())
    return reference.to(device).eval(), ours.to(device).eval()


# Operators that carry the FLOPs (matrix products); self CPU time of anything else is overhead.
MATMUL_OPS = ('linear', 'addmm', 'aten::mm', 'bmm', 'matmul', 'scaled_dot_product',
              'convolution')


def matmul_share(fn) -> tuple:
    """(total ms, matrix-product ms) of one call of ``fn``, from the profiler's self times."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e3
    matmul = sum(e.self_cpu_time_total for e in events
                 if any(op in e.key for op in MATMUL_OPS)) / 1e3
    return total, matmul


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='base', choices=sorted(ARCHS))
    parser.add_argument('--batch', type=int, default=7)
    parser.add_argument('--text-len', type=int, default=20)
    parser.add_argument('--vocab-size', type=int, default=64010)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--profile', action='store_true',
                        help='also print the matrix-product share and the ceiling it sets')
    args = parser.parse_args()

    torch.manual_seed(0)
    reference, ours = build_pair(args.arch, args.vocab_size, args.device)
    images = torch.randn(args.batch, 3, 224, 224, device=args.device)
    text_ids = torch.randint(3, args.vocab_size, (args.batch, args.text_len), device=args.device)
    # Every other sample is padded to a different length, as in a real batch.
    lengths = torch.tensor([args.text_len - (i % 2) * (i + 1) for i in range(args.batch)])
    padding = torch.arange(args.text_len)[None] >= lengths.clamp(min=1)[:, None]
    padding = padding.to(args.device)

    def run_reference():
        return reference(visual_tokens=images, textual_tokens=text_ids,
                         text_padding_position=padding)['encoder_out']

    def run_ours():
        return ours(images, text_ids, padding)

    with torch.inference_mode():
        diff = (run_reference() - run_ours()).abs().max().item()  # also the warm-up
        times = {'torchscale': [], 'mmevf': []}
        for _ in range(args.repeats):
            for name, fn in (('torchscale', run_reference), ('mmevf', run_ours)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        shares = {}
        if args.profile:
            shares = {name: matmul_share(fn)
                      for name, fn in (('torchscale', run_reference), ('mmevf', run_ours))}

    best = {name: min(t) for name, t in times.items()}
    print(f'arch={args.arch} batch={args.batch} text_len={args.text_len} '
          f'threads={torch.get_num_threads()} max|diff|={diff:.2e}')
    for name, t in times.items():
        print(f'  {name:10s} best {best[name] * 1e3:8.1f} ms   median '
              f'{sorted(t)[len(t) // 2] * 1e3:8.1f} ms')
    print(f'  speed-up (best): {best["torchscale"] / best["mmevf"]:.2f}x')
    for name, (total, matmul) in shares.items():
        print(f'  {name:10s} profiled {total:8.1f} ms, matrix products {matmul:8.1f} ms '
              f'({matmul / total:.0%})')
    if shares:
        total, matmul = shares['mmevf']
        # scale the profiled share to the unprofiled best time
        floor = best['mmevf'] * matmul / total
        print(f'  ceiling (everything but matrix products free): '
              f'{best["torchscale"] / floor:.2f}x')


if __name__ == '__main__':
    main()
