"""tools/analysis/benchmark.py at the tiny scale: it runs the three pipelines and the BEiT-3
comparison and ends with the three ratio lines (the speed targets need the real scale)."""
import re

import torch

from tests.conftest import load_tool


def test_benchmark_prints_the_ratios(xlmr_tokenizer_dir, capsys):
    benchmark = load_tool('analysis/benchmark')
    threads = torch.get_num_threads()
    try:
        benchmark.main(['evf-tiny_synthref', '--expressions', '3', '--images', '2',
                        '--image-size', '60', '80', '--repeats', '1', '--beit3-repeats', '1',
                        '--threads', '1', '--tokenizer', str(xlmr_tokenizer_dir)])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r'grouped/naive: \d+\.\d+x', lines[-3])
    assert re.fullmatch(r'grouped/floor: \d+\.\d+x', lines[-2])
    assert re.fullmatch(r'beit3/torchscale: \d+\.\d+x', lines[-1])
    diff = float(re.search(r'max \|diff\| ([\d.e+-]+)\)', '\n'.join(lines)).group(1))
    assert diff <= 1e-5  # the two BEiT-3 implementations agree on the same weights
    for mode in ('grouped', 'naive', 'floor'):
        assert any(line.split()[0] == mode and 'expressions/s' in line for line in lines)
