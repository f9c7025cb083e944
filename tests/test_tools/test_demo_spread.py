"""tools/analysis/demo_spread.py: the statistics, the table and the parsing of text_following's
output by hand; then a real 2-iteration run on the test SynthRef (its training command run in
this process, its evaluation a real subprocess), and a second call that finds it finished and
trains nothing."""
import contextlib
import json
import math
import os
import runpy
import statistics
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs/evf_sam/evf-tiny_synthref.py')
# the recipe cut to 2 iterations of 2 images, no validation during training, 4 val images
TINY_OPTIONS = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=100', 'train_cfg.val_begin=100',
    'default_hooks.checkpoint.interval=2', 'default_hooks.checkpoint.save_best=None',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'val_dataloader.dataset.indices=4'
]
# what tools/analysis/text_following.py prints last, after the runner's log
TEXT_FOLLOWING_OUTPUT = """\
12/07 04:18:10 - mmengine - INFO - Iter(test) [1/1]    val/cIoU: 2.9818  val/gIoU: 2.7638
split     cIoU     gIoU crossIoU    pairs   images
--------------------------------------------------
val       2.98     2.76     0.89   156.00     2.00
text following (val): cross-object IoU 0.886 over 156 pairs of expressions naming different \
objects in 2 images (lower is better; the same mask for every text scores ~1.0)
"""


@pytest.fixture(scope='module')
def tool():
    return load_tool('analysis/demo_spread')


def test_parses_text_following_output(tool):
    assert tool.parse_text_following(TEXT_FOLLOWING_OUTPUT, 'val') == dict(
        cIoU=2.98, gIoU=2.76, crossIoU=0.886)  # crossIoU from the line with 3 decimals
    with pytest.raises(ValueError, match="no row 'testA'"):
        tool.parse_text_following(TEXT_FOLLOWING_OUTPUT.replace('(val)', '(testA)'), 'testA')
    with pytest.raises(ValueError, match='no metric table'):
        tool.parse_text_following('Traceback (most recent call last):\n', 'val')


def test_statistics_by_hand(tool):
    Run = tool.Run
    runs = [
        Run(0, 1, 'a', cIoU=40.0, gIoU=41.0, crossIoU=0.30, train_s=100.0),
        Run(0, 2, 'b', cIoU=50.0, gIoU=52.0, crossIoU=0.10, train_s=300.0),
        Run(1, 1, 'c', cIoU=44.0, gIoU=45.0, crossIoU=0.20, train_s=None),  # trained elsewhere
        Run(1, 2, 'd', cIoU=47.0, gIoU=49.0, crossIoU=0.40, train_s=200.0),
        Run(2, 1, 'e', cIoU=99.0, gIoU=99.0, crossIoU=0.0, train_s=1.0, error='training failed',
            returncode=1, log='e/train.log'),  # left out
    ]
    stats = tool.spread_stats(runs)
    # an even count: the mean of the two middle values (44, 47) / (45, 49) / (0.2, 0.3)
    assert stats['cIoU'] == dict(min=40.0, median=45.5, max=50.0)
    assert stats['gIoU'] == dict(min=41.0, median=47.0, max=52.0)
    assert stats['crossIoU']['median'] == pytest.approx(0.25)
    assert (stats['crossIoU']['min'], stats['crossIoU']['max']) == (0.10, 0.40)
    # an odd count (the run without train_s left out): the middle value
    assert stats['train_s'] == dict(min=100.0, median=200.0, max=300.0)
    assert tool.spread_stats([runs[-1]]) == {}

    lines = tool.format_spread_table(runs, stats).splitlines()
    assert lines[0].split() == ['seed', 'threads', 'cIoU', 'gIoU', 'crossIoU', 'train_s']
    assert lines[2].split() == ['0', '1', '40.00', '41.00', '0.300', '100.0']
    assert lines[4].split() == ['1', '1', '44.00', '45.00', '0.200', '-']
    assert lines[6].split()[:3] == ['2', '1', 'FAILED:']
    assert 'returncode 1, log e/train.log' in lines[6]
    assert [line.split() for line in lines[-3:]] == [
        ['min', '40.00', '41.00', '0.100', '100.0'],
        ['median', '45.50', '47.00', '0.250', '200.0'],
        ['max', '50.00', '52.00', '0.400', '300.0']]


def test_rebases_the_data_root(tool):
    loader = dict(dataset=dict(
        data_root='data/synthref/', datasets=[dict(data_root='data/synthref_twins/parts/')],
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='TokenizeText', tokenizer='data/synthref/tokenizer')]))
    assert tool.rebase_paths(loader, 'data/synthref', '/tmp/sr', 'val_dataloader') == [
        'val_dataloader.dataset.data_root=/tmp/sr/',
        'val_dataloader.dataset.pipeline.1.tokenizer=/tmp/sr/tokenizer']


def run_lines(out: str) -> list:
    """The run lines of the printed table: [seed, threads, cIoU, gIoU, crossIoU, train_s]."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ['seed', 'threads'])
    end = lines.index(lines[start + 1], start + 2)  # the second rule
    return [[float(v) for v in line.split()] for line in lines[start + 2:end]]


class LogStream:
    """What a subprocess writing to ``log`` would write there; once the run is over (``log``
    None), whatever the loggers it created still write goes to the current ``sys.stdout``."""

    def __init__(self, log) -> None:
        self.log = log

    def write(self, text: str) -> int:
        return (self.log or sys.stdout).write(text)

    def flush(self) -> None:
        (self.log or sys.stdout).flush()

    def isatty(self) -> bool:
        return False


def train_in_process(calls: list):
    """A stand-in for the tool's ``subprocess``: ``python tools/train.py ...`` runs in this
    process (runpy, as its ``__main__``, with that argv and environment, its output in the log);
    any other command (the evaluation, the one real run of tools/analysis/text_following.py)
    is a real subprocess. tools/train.py runs as real subprocesses elsewhere (through
    tools/dist_train.sh and slurm_train.sh: test_dist_train.py, test_slurm_scripts.py); a
    second interpreter here would prove nothing more about this tool."""

    def run(cmd, stdout=None, stderr=None, env=None, **kwargs):
        calls.append(cmd)
        if cmd[1] != str(ROOT / 'tools' / 'train.py'):
            return subprocess.run(cmd, stdout=stdout, stderr=stderr, env=env, **kwargs)
        assert cmd[0] == sys.executable and stderr == subprocess.STDOUT and not kwargs
        # what the tool gives the subprocess: its thread count, the repository importable
        assert env['OMP_NUM_THREADS'] == '1' and str(ROOT) in env['PYTHONPATH'].split(os.pathsep)
        stream, threads, returncode = LogStream(stdout), torch.get_num_threads(), 0
        try:
            with mock.patch.dict(os.environ, env, clear=True), \
                    mock.patch.object(sys, 'argv', cmd[1:]), \
                    contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                runpy.run_path(cmd[1], run_name='__main__')
        except SystemExit as exc:
            returncode = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:  # as the interpreter would: the traceback in the log, exit 1
            traceback.print_exc(file=stdout)
            returncode = 1
        finally:
            stream.log = None
            torch.set_num_threads(threads)
        return subprocess.CompletedProcess(cmd, returncode)

    return SimpleNamespace(run=run, STDOUT=subprocess.STDOUT)


def test_a_real_run_then_nothing_retrained(tool, synthref_root, tmp_path, capsys, monkeypatch):
    work_dir = tmp_path / 'spread'
    # one real run (a training in this process, a real evaluation subprocess; nothing with the
    # second call); the statistics over several runs are tested above on hand-made lines
    calls = []
    monkeypatch.setattr(tool, 'subprocess', train_in_process(calls))
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)  # the tool sets it for --threads
    argv = [CONFIG, '--seeds', '0', '--threads', '1', '--work-dir', str(work_dir),
            '--data-root', str(synthref_root), '--cfg-options', *TINY_OPTIONS]
    assert tool.main(argv) == 0
    assert [cmd[1] for cmd in calls] == [str(ROOT / 'tools' / 'train.py'),
                                        str(ROOT / 'tools' / 'analysis' / 'text_following.py')]
    train_log = work_dir / 'seed0_threads1' / 'train.log'
    assert 'Saving checkpoint at 2 iterations' in train_log.read_text()  # the runner's output
    out = capsys.readouterr().out
    lines = run_lines(out)
    assert [line[:2] for line in lines] == [[0, 1]]
    for _, _, ciou, giou, cross, seconds in lines:
        assert all(math.isfinite(v) for v in (ciou, giou, cross, seconds))
        assert 0 <= ciou <= 100 and 0 <= giou <= 100 and 0 <= cross <= 1 and seconds > 0

    summary = json.loads((work_dir / 'spread.json').read_text())
    runs = summary['runs']
    assert [(r['seed'], r['threads'], r['trained'], r['error']) for r in runs] == [
        (0, 1, True, None)]
    for line, run in zip(lines, runs):  # the printed lines are the JSON's figures, rounded
        assert line[2:] == pytest.approx([run[k] for k in ('cIoU', 'gIoU', 'crossIoU', 'train_s')],
                                         abs=0.05)
    for name in ('cIoU', 'gIoU', 'crossIoU', 'train_s'):
        values = [r[name] for r in runs]
        assert summary['stats'][name] == dict(min=min(values), median=statistics.median(values),
                                              max=max(values))
    printed_stats = out[out.index('\nmin '):].split()
    assert printed_stats[:5] == ['min'] + [f'{summary["stats"][n]["min"]:{f}}' for n, f in
                                           (('cIoU', '.2f'), ('gIoU', '.2f'),
                                            ('crossIoU', '.3f'), ('train_s', '.1f'))]

    # a second call: the run holds its final checkpoint, so nothing is trained again
    checkpoints = {p: p.stat().st_mtime_ns for p in work_dir.glob('seed*_threads1/iter_2.pth')}
    assert len(checkpoints) == 1
    train_logs = {p: p.read_text() for p in work_dir.glob('*/train.log')}
    assert tool.main(argv) == 0
    assert len(calls) == 2  # no subprocess at all the second time
    again = capsys.readouterr().out
    assert again.count('holds the finished run; not training again') == 1
    assert 'training in' not in again
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints
    assert {p: p.read_text() for p in train_logs} == train_logs
    assert run_lines(again) == lines  # the same figures (and recorded training time)
    assert [r['trained'] for r in json.loads((work_dir / 'spread.json').read_text())['runs']] \
        == [False]


def test_a_failed_run_is_reported_and_exits_1(tool, synthref_root, tmp_path, capsys,
                                               monkeypatch):
    # every subprocess "fails" at once: no training, no evaluation
    monkeypatch.setattr(tool, '_run_logged', lambda cmd, threads, log, mode: 3)
    work_dir = tmp_path / 'spread'
    assert tool.main([CONFIG, '--seeds', '5', '--threads', '1', '--work-dir', str(work_dir),
                      '--data-root', str(synthref_root), '--cfg-options', *TINY_OPTIONS]) == 1
    out = capsys.readouterr().out
    log = work_dir / 'seed5_threads1' / 'train.log'
    assert f'FAILED: training failed (returncode 3, log {log})' in out
    summary = json.loads((work_dir / 'spread.json').read_text())
    assert summary['stats'] == {}
    assert (summary['runs'][0]['returncode'], summary['runs'][0]['log']) == (3, str(log))
