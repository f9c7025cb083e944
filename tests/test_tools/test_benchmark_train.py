"""tools/analysis/benchmark_train.py at the tiny scale: one warm-up and one timed training
step of each mode, ending with the ratio line (the speed target needs the real scale)."""
import re

import torch

from tests.conftest import load_tool


def test_train_benchmark_prints_the_ratio(xlmr_tokenizer_dir, capsys):
    benchmark_train = load_tool('analysis/benchmark_train')
    threads = torch.get_num_threads()
    try:
        benchmark_train.main(['evf-tiny-frozen-sam_synthref',
                              '--images', '2', '--expressions', '2', '--image-size', '60', '80',
                              '--steps', '1', '--threads', '1',
                              '--tokenizer', str(xlmr_tokenizer_dir)])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r'cached/recompute: \d+\.\dx', lines[-1])
    for mode in ('recompute', 'cached'):
        assert any(line.split()[0] == mode and 'per training step' in line for line in lines)
