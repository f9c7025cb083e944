"""tools/slurm_train.sh and tools/slurm_test.sh (mmdet's interface) on a one-node fake slurm: a
fake ``srun`` on PATH records its arguments and runs the command as slurm's single task would
(SLURM_PROCID=0, SLURM_NTASKS=1, SLURM_LOCALID=0, SLURM_NODELIST=localhost), and a fake
``scontrol`` names the host. tools/train.py and tools/test.py really run with
``--launcher slurm``: on this machine without CUDA, mmevf starts the process group over gloo
from those variables (mmevf/compat/distributed.py), where mmengine's own slurm launcher would
stop at ``torch.cuda.set_device``."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from mmevf.compat.distributed import slurm_environment
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/evf_sam/evf-tiny_synthref.py'

FAKE_SRUN = r'''#!/usr/bin/env bash
# A one-node slurm: the arguments, one per line, and PYTHONPATH to $FAKE_SLURM_LOG; then the
# command (after srun's options) as task 0 of 1, unless FAKE_SRUN_DRY=1.
{ echo "srun"; printf '%s\n' "$@"; echo "PYTHONPATH=${PYTHONPATH:-}"; } >> "$FAKE_SLURM_LOG"
[ "${FAKE_SRUN_DRY:-0}" = 1 ] && exit 0
ntasks=1
while [ $# -gt 0 ]; do
    case "$1" in
        -p|-J|-n|-N|-w|-t|-A) shift 2;;
        --ntasks=*) ntasks=${1#--ntasks=}; shift;;
        -*) shift;;
        *) break;;
    esac
done
[ "$ntasks" = 1 ] || { echo "fake srun: one task only, got --ntasks=$ntasks" >&2; exit 1; }
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=localhost SLURM_NNODES=1 \
SLURM_JOB_ID=1 exec "$@"
'''
FAKE_SCONTROL = r'''#!/usr/bin/env bash
{ echo "scontrol"; printf '%s\n' "$@"; } >> "$FAKE_SLURM_LOG"
[ "$1 $2" = "show hostname" ] && echo "$3"
'''


@pytest.fixture
def fake_slurm(tmp_path) -> dict:
    """PATH with the fake ``srun`` / ``scontrol`` first, PYTHON, and the log they write."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('SLURM_', 'MASTER_', 'GPUS', 'CPUS_PER_TASK', 'SRUN_ARGS',
                                'GRES'))
           and k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'PYTHONPATH')}
    env.update(PATH=f'{bin_dir}:{env["PATH"]}', PYTHON=sys.executable, OMP_NUM_THREADS='1',
               FAKE_SLURM_LOG=str(tmp_path / 'slurm.log'))
    return env


def calls(env: dict) -> list:
    """The recorded calls: [program, arg, ...] each."""
    log = Path(env['FAKE_SLURM_LOG'])
    found, current = [], None
    for line in log.read_text().splitlines():
        if line in ('srun', 'scontrol'):
            current = [line]
            found.append(current)
        else:
            current.append(line)
    log.unlink()
    return found


def run(script: str, args: list, env: dict, **extra) -> subprocess.CompletedProcess:
    proc = subprocess.run(['bash', f'tools/{script}', *args], cwd=ROOT, env=dict(env, **extra),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def srun_options(call: list, tool: str) -> tuple:
    """(srun's options, the command, PYTHONPATH) of a recorded srun call."""
    assert call[0] == 'srun' and call[-1].startswith('PYTHONPATH=')
    start = call.index(sys.executable)
    assert call[start + 1:start + 3] == ['-u', str(ROOT / 'tools' / tool)], call
    return call[1:start], call[start + 3:-1], call[-1][len('PYTHONPATH='):]


def test_defaults_are_mmdets(fake_slurm):
    """8 tasks, 8 GPUs and 8 tasks per node, 5 CPUs per task; GRES empty drops --gres;
    SRUN_ARGS goes to srun, the arguments after the fourth to the python tool."""
    env = dict(fake_slurm, FAKE_SRUN_DRY='1')
    run('slurm_train.sh', ['part', 'job', 'CONFIG.py', 'WORK', '--amp'], env)
    run('slurm_test.sh', ['part', 'job', 'CONFIG.py', 'CKPT.pth', '--out', 'r.pkl'], env,
        GRES='', SRUN_ARGS='--qos=low --time=1:00:00')
    train, test = calls(env)
    options, command, pythonpath = srun_options(train, 'train.py')
    assert options == ['-p', 'part', '--job-name=job', '--gres=gpu:8', '--ntasks=8',
                       '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert command == ['CONFIG.py', '--work-dir=WORK', '--launcher=slurm', '--amp']
    assert pythonpath.split(':')[0] == str(ROOT)
    options, command, _ = srun_options(test, 'test.py')
    assert options == ['-p', 'part', '--job-name=job', '--ntasks=8', '--ntasks-per-node=8',
                       '--cpus-per-task=5', '--kill-on-bad-exit=1', '--qos=low',
                       '--time=1:00:00']
    assert command == ['CONFIG.py', 'CKPT.pth', '--launcher=slurm', '--out', 'r.pkl']


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_usage_without_four_arguments(fake_slurm, script):
    proc = subprocess.run(['bash', f'tools/{script}', 'part', 'job', 'CONFIG.py'], cwd=ROOT,
                          env=fake_slurm, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith(f'Usage: tools/{script} PARTITION')
    assert not Path(fake_slurm['FAKE_SLURM_LOG']).exists()  # srun never ran


def local_config(synthref_root: Path, tmp_path: Path) -> Path:
    """The tiny EVF-SAM config on the test's SynthRef (40 images): its data paths, no workers,
    two images per test split; written next to the run."""
    cfg = Config.fromfile(str(CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        for dataset in loader.dataset.get('datasets', [loader.dataset]):
            dataset.data_root = str(synthref_root)
            if loader is not cfg.train_dataloader:
                dataset.indices = 2
            for transform in dataset.pipeline:
                if transform.type == 'TokenizeText':
                    transform.tokenizer = str(synthref_root / 'tokenizer')
    path = tmp_path / 'evf-tiny_local.py'
    cfg.dump(str(path))
    return path


def test_train_then_test_through_srun(fake_slurm, synthref_root, tmp_path):
    config, work_dir = local_config(synthref_root, tmp_path), tmp_path / 'work'
    env = dict(fake_slurm, GPUS='1', GPUS_PER_NODE='1', CPUS_PER_TASK='2',
               SRUN_ARGS='--time=0:10:00 --mem=2G', MASTER_PORT=str(free_port()))
    limits = ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
              'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1']
    train = run('slurm_train.sh', ['debug', 'evf-tiny', str(config), str(work_dir), *limits],
                env)
    (srun, scontrol), = [calls(env)]
    options, command, pythonpath = srun_options(srun, 'train.py')
    assert options == ['-p', 'debug', '--job-name=evf-tiny', '--gres=gpu:1', '--ntasks=1',
                       '--ntasks-per-node=1', '--cpus-per-task=2', '--kill-on-bad-exit=1',
                       '--time=0:10:00', '--mem=2G']
    assert command == [str(config), f'--work-dir={work_dir}', '--launcher=slurm', *limits]
    assert pythonpath.split(':')[0] == str(ROOT)
    # the master host came from slurm's node list
    assert scontrol == ['scontrol', 'show', 'hostname', 'localhost']
    log = train.stdout + train.stderr
    assert 'Distributed training: True' in log and 'GPU number: 1' in log  # world size
    assert 'Iter(train) [2/2]' in log
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file() and not (work_dir / 'iter_3.pth').exists()

    env['MASTER_PORT'] = str(free_port())
    test = run('slurm_test.sh', ['debug', 'evf-tiny-test', str(config), str(checkpoint),
                                 '--work-dir', str(tmp_path / 'test')], env)
    (srun, _), = [calls(env)]
    options, command, _ = srun_options(srun, 'test.py')
    assert options[:2] == ['-p', 'debug'] and options[2] == '--job-name=evf-tiny-test'
    assert command == [str(config), str(checkpoint), '--launcher=slurm', '--work-dir',
                       str(tmp_path / 'test')]
    assert 'Distributed training: True' in test.stdout + test.stderr
    table = test.stdout[test.stdout.index('split '):].splitlines()
    assert [line.split()[0] for line in table[2:5]] == [
        'synthref_val', 'synthref_testA', 'synthref_testB']


def test_slurm_environment(monkeypatch):
    """The variables mmengine's slurm launcher derives, from a task's SLURM_* (no scontrol
    call when MASTER_ADDR is set); outside a slurm task, an error that says so."""
    for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_LOCALID',
                 'MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="outside a slurm task: 'SLURM_PROCID'"):
        slurm_environment()
    monkeypatch.setenv('PATH', '/nonexistent')  # no scontrol
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node[1-2]')
    with pytest.raises(RuntimeError, match=r'master host of SLURM_NODELIST=node\[1-2\]'):
        slurm_environment()
    monkeypatch.setenv('MASTER_ADDR', 'node1')
    slurm_environment(port=1234)
    assert {k: os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                                       'MASTER_PORT')} == dict(
        RANK='3', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='node1', MASTER_PORT='1234')
