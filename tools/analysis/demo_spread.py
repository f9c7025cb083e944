"""Run-to-run spread of the demo's figures: train the recipe once per (seed, thread count), print
every run's val cIoU / gIoU / crossIoU and their min / median / max.

``python tools/analysis/demo_spread.py [CONFIG] [--seeds 0 1 2] [--threads 1 2] [--jobs 1]``

Each run gets its own work directory ``<work-dir>/seed<S>_threads<T>`` and two subprocesses,
as ``make demo`` (``tools/run_demo.sh``) runs them:

1. ``OMP_NUM_THREADS=<T> python tools/train.py CONFIG --resume --cfg-options
   randomness.seed=<S>`` (an interrupted run resumes; a run whose last checkpoint is the final
   one is not trained again), its output appended to ``train.log``;
2. ``tools/analysis/text_following.py`` on the final checkpoint, whose one test loop scores val
   cIoU, gIoU and crossIoU (output in ``eval.log``; the figures are kept in ``spread_run.json``
   and reused while the checkpoint and the command stay the same).

SynthRef is generated in ``--data-root`` if missing (600 images, seed 0, as ``make demo``
does). The table is also written to ``<work-dir>/spread.json``. A failed run is reported in its
line (return code, log) and left out of the statistics; the tool then exits 1.
"""
import argparse
import json
import os
import os.path as osp
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = 'configs/evf_sam/evf-tiny_synthref.py'
# the columns of a run line: (name, format)
FIGURES = (('cIoU', '.2f'), ('gIoU', '.2f'), ('crossIoU', '.3f'), ('train_s', '.1f'))


@dataclass
class Run:
    """One (seed, threads) run: its figures, or why it has none (``error``)."""
    seed: int
    threads: int
    work_dir: str
    cIoU: Optional[float] = None
    gIoU: Optional[float] = None
    crossIoU: Optional[float] = None
    train_s: Optional[float] = None  # wall seconds of training (None: not trained by this tool)
    trained: bool = False  # False: the finished run was found and not trained again
    returncode: Optional[int] = None  # of the failed subprocess
    log: Optional[str] = None
    error: Optional[str] = None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train the demo recipe once per seed and thread count; print val cIoU, '
        'gIoU and crossIoU of every run with their min / median / max')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help=f'train config file path (default: {DEFAULT_CONFIG})')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='values of randomness.seed (default: 0 1 2)')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2],
                        help='values of OMP_NUM_THREADS (default: 1 2)')
    parser.add_argument('--work-dir', default='work_dirs/demo_spread',
                        help='one sub-folder per run, and spread.json (default: %(default)s)')
    parser.add_argument('--data-root', default='data/synthref',
                        help='SynthRef folder, generated if missing (default: %(default)s)')
    parser.add_argument('--split', default='val', help='split scored (default: val)')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='override config settings of training and evaluation, as tools/train.py\'s')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at the same time (default: 1; runs sharing the cores are '
                        'slower, and their thread count means less)')
    args = parser.parse_args(argv)
    if args.jobs < 1 or min(args.threads) < 1:
        parser.error('--jobs and --threads must be positive')
    return args


def cfg_options_dict(options: Sequence[str]) -> dict:
    """``['a.b=1', ...]`` read as ``--cfg-options`` of the tools reads them (mmengine's
    ``DictAction``), so that this tool sees the config its subprocesses see."""
    if not options:
        return {}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def _under(path: str, root: str) -> Optional[str]:
    """The rest of ``path`` after ``root`` (``''``, ``'/tokenizer'``, ...), or ``None`` if
    ``path`` is not ``root`` or inside it."""
    path, root = osp.abspath(path), osp.abspath(root)
    if path == root:
        return ''
    return path[len(root):] if path.startswith(root + os.sep) else None


def rebase_paths(node, old_root: str, new_root: str, prefix: str) -> List[str]:
    """``--cfg-options`` (``'prefix.key.0.name=value'``) moving every string of ``node`` (a
    config section: dicts and lists) that lies in ``old_root`` to the same place in
    ``new_root``: the datasets' ``data_root`` and the tokenizer folder that sits inside it."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return []
    options = []
    for key, value in items:
        name = f'{prefix}.{key}'
        if isinstance(value, str):
            rest = _under(value, old_root)
            # a trailing slash is kept: some configs join data_root + 'name' by hand
            if rest is not None:
                tail = '/' if rest == '' and value.endswith('/') else rest
                options.append(f'{name}={osp.normpath(new_root)}{tail}')
        else:
            options.extend(rebase_paths(value, old_root, new_root, name))
    return options


def data_root_options(cfg: Config, data_root: str) -> List[str]:
    """``--cfg-options`` that point the train and val loaders at ``data_root``; none if the
    config already reads it."""
    dataset = cfg.train_dataloader.dataset
    old_root = dataset.get('data_root') or cfg.get('data_root')
    if old_root is None:
        raise ValueError('the config\'s train dataset has no data_root; pass the paths with '
                         '--cfg-options instead of --data-root')
    if osp.abspath(old_root) == osp.abspath(data_root):
        return []
    return (rebase_paths(cfg.train_dataloader, old_root, data_root, 'train_dataloader') +
            rebase_paths(cfg.val_dataloader, old_root, data_root, 'val_dataloader'))


def final_checkpoint_name(cfg: Config) -> str:
    """The file name of the checkpoint written at the end of training."""
    train_cfg = cfg.train_cfg
    if 'max_iters' in train_cfg:
        return f'iter_{train_cfg.max_iters}.pth'
    return f'epoch_{train_cfg.max_epochs}.pth'


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The path ``<work_dir>/last_checkpoint`` names (what ``--resume`` continues from)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        return f.read().strip() or None


def parse_text_following(output: str, split: str = 'val') -> Dict[str, float]:
    """``{'cIoU', 'gIoU', 'crossIoU'}`` from what ``text_following.py`` printed: the row of
    ``split`` in the last metric table (cIoU, gIoU), and crossIoU from the summary line, which
    has one more decimal than the table."""
    lines = output.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith('split ')]
    cross = re.findall(rf'^text following \({re.escape(split)}\): cross-object IoU ([\d.]+)',
                       output, re.M)
    if not headers or not cross:
        raise ValueError(f'no metric table and text-following line for split {split!r}')
    header = lines[headers[-1]]
    columns = header.split()[1:]
    width = len(header) - 9 * len(columns)  # format_metric_table: split column, then 9 each
    for line in lines[headers[-1] + 2:]:
        if line[:width].strip() == split:
            cells = {c: line[width + 9 * k:width + 9 * (k + 1)].strip()
                     for k, c in enumerate(columns)}
            return dict(cIoU=float(cells['cIoU']), gIoU=float(cells['gIoU']),
                        crossIoU=float(cross[-1]))
    raise ValueError(f'the metric table has no row {split!r}')


def spread_stats(runs: Sequence[Run]) -> Dict[str, Dict[str, float]]:
    """``{figure: {'min', 'median', 'max'}}`` over the runs without error (a figure missing
    from a run, e.g. ``train_s`` of a run trained elsewhere, leaves that run out of it)."""
    stats = {}
    for name, _ in FIGURES:
        values = [getattr(r, name) for r in runs
                  if r.error is None and getattr(r, name) is not None]
        if values:
            stats[name] = dict(min=min(values), median=statistics.median(values),
                               max=max(values))
    return stats


def format_spread_table(runs: Sequence[Run], stats: Dict[str, Dict[str, float]]) -> str:
    """One line per run (seed, threads, the figures; a failed run: why, and its log), then
    the min / median / max rows."""
    head = f'{"seed":>6}{"threads":>8}' + ''.join(f'{name:>10}' for name, _ in FIGURES)
    lines = [head, '-' * len(head)]

    def cells(values: Dict[str, Optional[float]]) -> str:
        return ''.join(f'{"-":>10}' if values.get(name) is None else f'{values[name]:>10{fmt}}'
                       for name, fmt in FIGURES)

    for run in runs:
        start = f'{run.seed:>6}{run.threads:>8}'
        if run.error is None:
            lines.append(start + cells(asdict(run)))
        else:
            lines.append(f'{start}  FAILED: {run.error} (returncode {run.returncode}, '
                         f'log {run.log})')
    lines.append('-' * len(head))
    for row in ('min', 'median', 'max'):
        values = {name: stat[row] for name, stat in stats.items()}
        lines.append(f'{row:<14}' + cells(values))
    return '\n'.join(lines)


def write_json_atomic(path: str, obj) -> None:
    """``obj`` as JSON in ``path``: a temporary file in the same folder renamed over it, so a
    reader never finds half a file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=2)
            f.write('\n')
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _read_json(path: str) -> dict:
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _run_logged(cmd: List[str], threads: int, log: str, mode: str) -> int:
    """Run ``cmd`` with ``OMP_NUM_THREADS=threads``, its output in ``log``; its return code."""
    # the repository root importable, as the dist_*.sh scripts make it
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
    with open(log, mode) as f:
        f.write(f'# {time.strftime("%Y-%m-%d %H:%M:%S")} OMP_NUM_THREADS={threads} '
                f'{shlex.join(cmd)}\n')
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def run_one(args: argparse.Namespace, options: List[str], final_name: str, seed: int,
            threads: int) -> Run:
    """Train (unless finished) and evaluate one (seed, threads) run."""
    work_dir = osp.join(args.work_dir, f'seed{seed}_threads{threads}')
    os.makedirs(work_dir, exist_ok=True)
    run = Run(seed, threads, work_dir)
    record_path = osp.join(work_dir, 'spread_run.json')
    record = _read_json(record_path)
    # the seed last, so that it wins over one in --cfg-options
    run_options = options + [f'randomness.seed={seed}']

    def finished() -> bool:
        ckpt = last_checkpoint(work_dir)
        return ckpt is not None and osp.basename(ckpt) == final_name

    if finished():
        print(f'[spread] seed {seed}, {threads} threads: {work_dir} holds the finished run; '
              f'not training again', flush=True)
    else:
        print(f'[spread] seed {seed}, {threads} threads: training in {work_dir}', flush=True)
        log = osp.join(work_dir, 'train.log')
        cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), args.config, '--work-dir',
               work_dir, '--resume', '--cfg-options', *run_options]
        start = time.perf_counter()
        returncode = _run_logged(cmd, threads, log, 'a')
        # a resumed run adds the time of every part
        record['train_seconds'] = record.get('train_seconds', 0.0) + time.perf_counter() - start
        write_json_atomic(record_path, record)
        run.trained = True
        if returncode != 0:
            run.error, run.returncode, run.log = 'training failed', returncode, log
            return run
        if not finished():
            run.error, run.returncode, run.log = (f'training ended without {final_name}',
                                                  returncode, log)
            return run
    run.train_s = record.get('train_seconds')

    checkpoint = last_checkpoint(work_dir)
    log = osp.join(work_dir, 'eval.log')
    cmd = [sys.executable, osp.join(ROOT, 'tools/analysis/text_following.py'), args.config,
           checkpoint, '--split', args.split, '--work-dir', osp.join(work_dir, 'eval'),
           '--cfg-options', *run_options]
    # the figures of the same checkpoint under the same command are not computed twice
    key = dict(command=cmd[1:], threads=threads,
               checkpoint_mtime_ns=os.stat(checkpoint).st_mtime_ns)
    cached = record.get('evaluation', {})
    if cached.get('key') == key:
        figures = cached['figures']
    else:
        print(f'[spread] seed {seed}, {threads} threads: evaluating {checkpoint}', flush=True)
        returncode = _run_logged(cmd, threads, log, 'w')
        if returncode != 0:
            run.error, run.returncode, run.log = 'evaluation failed', returncode, log
            return run
        with open(log) as f:
            output = f.read()
        try:
            figures = parse_text_following(output, args.split)
        except ValueError as exc:
            run.error, run.returncode, run.log = str(exc), returncode, log
            return run
        record['evaluation'] = dict(key=key, figures=figures)
        write_json_atomic(record_path, record)
    run.cIoU, run.gIoU, run.crossIoU = figures['cIoU'], figures['gIoU'], figures['crossIoU']
    return run


def ensure_synthref(data_root: str) -> None:
    """Generate SynthRef in ``data_root`` if it is not there, as ``make demo`` does."""
    if osp.isfile(osp.join(data_root, 'synthref', 'instances.json')):
        return
    print(f'[spread] generating SynthRef in {data_root}', flush=True)
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/dataset_converters/make_synthref.py'),
                    data_root, '--num-images', '600', '--seed', '0'], check=True)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(cfg_options_dict(args.cfg_options))
    ensure_synthref(args.data_root)
    # the user's options last, so that they can still override a rebased path
    options = data_root_options(cfg, args.data_root) + list(args.cfg_options)
    final_name = final_checkpoint_name(cfg)

    # a repeated seed or thread count would share a work directory
    pairs = list(dict.fromkeys((seed, threads) for seed in args.seeds for threads in args.threads))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda p: run_one(args, options, final_name, *p), pairs))
    stats = spread_stats(runs)
    print(f'\n{args.config}, {args.split} split, {len(runs)} runs '
          f'({sum(r.error is None for r in runs)} finished):')
    print(format_spread_table(runs, stats), flush=True)
    out = osp.join(args.work_dir, 'spread.json')
    write_json_atomic(out, dict(config=args.config, data_root=args.data_root, split=args.split,
                                cfg_options=list(args.cfg_options),
                                runs=[asdict(r) for r in runs], stats=stats))
    print(f'written to {out}')
    return 1 if any(r.error is not None for r in runs) else 0


if __name__ == '__main__':
    sys.exit(main())
