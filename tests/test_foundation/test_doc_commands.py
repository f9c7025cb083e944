"""Every command of the documentation runs, or at least parses, in CI.

The fenced ``bash`` / ``shell`` blocks of ``README.md``, ``docs/**/*.md``,
``configs/**/README.md`` and ``projects/**/README.md`` are extracted; each block carries its
class after the language, e.g. ````` ```bash ci:run `````, and every command line of the block
(comments dropped, ``\\`` continuations joined) is checked by the rules of that class:

``ci:run``
    Executed for real in a scratch folder laid out like the repository root after
    ``make demo`` (``configs/``, ``tools/``, ``projects/`` linked; ``data/synthref/`` a
    40-image SynthRef; ``work_dirs/evf-tiny_synthref/iter_1400.pth`` the random-weight tiny
    EVF-SAM checkpoint of tests/conftest.py's ``tiny_checkpoint``, named by
    ``last_checkpoint``). The command line is expanded by bash there
    (quotes, ``$(cat ...)``), then the ``python <script>`` runs in this process (``runpy``,
    its ``__main__``, with that argv and cwd: no second interpreter start-up, which keeps the
    whole file near a minute on 2 cores). CI only appends the limits of ``RUN_LIMITS``
    (training cut to 2 iterations, in ``work_dirs/ci_train`` unless the command names its own
    work dir; data loaders without worker processes).
    Only the scripts of ``RUN_LIMITS`` may be run this way; anything else is ``ci:help``.
``ci:help``
    Paper-scale (or long) commands. The script exists and its ``--help`` exits 0; the command's
    own arguments parse with the script's parser (the script stops right after parsing); every
    config it names loads (``Config.fromfile``; config names through ``resolve_config``) and
    every shipped path it names (``configs/``, ``tools/``, ``projects/``, ``requirements/``,
    ``docs/``, ``tests/``) exists. ``tools/{dist,slurm}_{train,test}.sh`` are read by their
    positional layout (mmdet's), and the arguments they pass on parse with ``tools/train.py``
    / ``tools/test.py``.
``ci:env``
    Installation and shell set-up (``make``, ``pip``, ``apt-get``, ``source``, ``export``, the
    install scripts). Not run; the ``make`` targets exist in the Makefile and the requirement
    files and scripts they name exist. ``make test`` and ``make demo`` are not re-run here: they
    are what CI runs in the first place.

A block without a class, an unknown class, or a command for which its class has no rule fails
the test, so a new command cannot go unchecked. Python blocks (```` ```python ````) are compiled
(syntax only), and every relative link between the pages must resolve.
"""
import argparse
import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLASSES = ('run', 'help', 'env')
SHELL_LANGS = ('bash', 'shell', 'sh', 'console')
SHIPPED_PREFIXES = ('configs/', 'tools/', 'projects/', 'requirements/', 'docs/', 'tests/')
LOADERS = ['train_dataloader', 'val_dataloader', 'test_dataloader']
NO_WORKERS = [f'{loader}.{key}' for loader in LOADERS
              for key in ('num_workers=0', 'persistent_workers=False')]
# what CI appends to a `ci:run` command of each script (and the only scripts it runs)
RUN_LIMITS: Dict[str, List[str]] = {
    'tools/infer.py': [],
    'tools/test.py': ['--cfg-options', *NO_WORKERS],
    'tools/analysis/text_following.py': ['--cfg-options', *NO_WORKERS],
    'tools/train.py': ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                       'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
                       *NO_WORKERS],
    'tools/cache_embeddings.py': ['--num-workers', '0'],
    'tools/dataset_converters/make_synthref_labelme.py': [],
    'tools/dataset_converters/labelme2jsonl.py': [],
    'tools/analysis/browse_dataset.py': [],
}
# a ci:run training without its own --work-dir writes here, not over the demo's checkpoint
CI_TRAIN_WORK_DIR = ['--work-dir', 'work_dirs/ci_train']
# positional layout of the shell launchers: (names of the leading arguments, the python tool)
LAUNCHERS = {
    'tools/dist_train.sh': (('config', 'nproc'), 'tools/train.py'),
    'tools/dist_test.sh': (('config', 'checkpoint', 'nproc'), 'tools/test.py'),
    'tools/slurm_train.sh': (('partition', 'job_name', 'config', 'work_dir'), 'tools/train.py'),
    'tools/slurm_test.sh': (('partition', 'job_name', 'config', 'checkpoint'), 'tools/test.py'),
}
ENV_PROGRAMS = ('make', 'pip', 'pip3', 'source', '.', 'export', 'sudo', 'apt-get', 'apt',
                'git', 'cd', 'bash')


class Command(NamedTuple):
    where: str     # file:line
    cls: str       # run / help / env, or the wrong marker
    text: str      # the joined command line

    def __str__(self) -> str:
        return f'{self.where}: {self.text}'


def doc_files() -> List[Path]:
    files = [ROOT / 'README.md', *sorted((ROOT / 'docs').rglob('*.md')),
             *sorted((ROOT / 'configs').rglob('README.md')),
             *sorted((ROOT / 'projects').rglob('README.md'))]
    return [f for f in files if f.is_file()]


def fenced_blocks(path: Path) -> List[Tuple[int, str, List[str], List[str]]]:
    """(line of the fence, language, info words, lines) of every fenced block of ``path``."""
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r'^(\s*)(`{3,})\s*([\w+-]*)\s*(.*)$', lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang, info = match.groups()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        blocks.append((start, lang.lower(), info.split(), body))
        i += 1
    return blocks


def block_commands(path: Path, line: int, info: List[str], body: List[str]) -> List[Command]:
    rel = path.relative_to(ROOT).as_posix()
    marks = [w[3:] for w in info if w.startswith('ci:')]
    cls = marks[0] if len(marks) == 1 else f'unclassified (info: {" ".join(info) or "none"})'
    commands, current, first = [], '', None
    for offset, raw in enumerate(body):
        text = raw.strip()
        if not current and (not text or text.startswith('#')):
            continue
        if first is None:
            first = line + 1 + offset
        if text.endswith('\\'):
            current += text[:-1] + ' '
            continue
        commands.append(Command(f'{rel}:{first}', cls, current + text))
        current, first = '', None
    if current:
        commands.append(Command(f'{rel}:{first}', cls, current))
    return commands


def all_commands() -> List[Command]:
    out = []
    for path in doc_files():
        for line, lang, info, body in fenced_blocks(path):
            if lang in SHELL_LANGS:
                out.extend(block_commands(path, line, info, body))
    return out


COMMANDS = all_commands()


def split_command(text: str) -> Tuple[Dict[str, str], List[str]]:
    """Leading ``NAME=value`` assignments and the words of a command (shell quoting, comments
    dropped; ``$(...)`` stays a word)."""
    words = shlex.split(text, comments=True)
    env = {}
    while words and re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', words[0]):
        key, value = words.pop(0).split('=', 1)
        env[key] = value
    return env, words


def script_of(words: List[str]) -> Tuple[str, List[str]]:
    """('tools/train.py', args) for ``python tools/train.py ...``; ('', words) otherwise."""
    if words and re.fullmatch(r'python3?', words[0]) and len(words) > 1 \
            and words[1].endswith('.py'):
        return words[1], words[2:]
    return '', words


# ----------------------------------------------------------------------------- the test cases
def test_every_command_is_classified():
    assert COMMANDS, 'no command found in the docs'
    bad = [str(c) for c in COMMANDS if c.cls not in CLASSES]
    assert not bad, ('blocks need one class (```bash ci:run|ci:help|ci:env):\n' + '\n'.join(bad))


def test_python_blocks_compile():
    for path in doc_files():
        for line, lang, _, body in fenced_blocks(path):
            if lang == 'python':
                compile('\n'.join(body), f'{path.relative_to(ROOT)}:{line}', 'exec')


def heading_anchors(path: Path) -> set:
    """GitHub's anchors of the headings of ``path``."""
    text = re.sub(r'```.*?```', '', path.read_text(), flags=re.S)
    return {re.sub(r'[^\w\- ]', '', m.group(1).strip().lower()).replace(' ', '-')
            for m in re.finditer(r'^#+\s+(.*)$', text, re.M)}


def test_relative_links_resolve():
    """No dangling link between the pages: every relative link's file exists, and its anchor
    names a heading of a Markdown target."""
    bad = []
    for path in doc_files():
        text = re.sub(r'```.*?```', '', path.read_text(), flags=re.S)
        for match in re.finditer(r'\]\(([^)\s]+)\)', text):
            link = match.group(1)
            if re.match(r'^[a-z]+:', link):
                continue
            target, _, anchor = link.partition('#')
            target_path = (path.parent / target).resolve() if target else path
            if not target_path.exists():
                bad.append(f'{path.relative_to(ROOT)}: {link} (no such file)')
            elif anchor and target_path.suffix == '.md' \
                    and anchor not in heading_anchors(target_path):
                bad.append(f'{path.relative_to(ROOT)}: {link} (no such heading)')
    assert not bad, '\n'.join(bad)


# --------------------------------------------------------------------- ci:env
@lru_cache()
def make_targets() -> set:
    text = (ROOT / 'Makefile').read_text()
    return {m.group(1) for m in re.finditer(r'^([\w.-]+):', text, re.M)}


@pytest.mark.parametrize('command', [c for c in COMMANDS if c.cls == 'env'], ids=str)
def test_env_command(command):
    _, words = split_command(command.text)
    assert words, command
    if words[0] == 'sudo':
        words = words[1:]
    program = words[0]
    if program == 'make':
        targets = [w for w in words[1:] if not w.startswith('-') and '=' not in w]
        assert targets and set(targets) <= make_targets(), f'{command}: unknown make target'
    elif program in ('pip', 'pip3'):
        assert words[1] == 'install', command
        for flag, value in zip(words, words[1:]):
            if flag in ('-r', '--requirement'):
                assert (ROOT / value).is_file(), f'{command}: {value} does not exist'
    elif program in ('apt-get', 'apt'):
        assert words[1] in ('install', 'update'), command
    elif program in ('source', '.'):
        assert words[1:] == ['.venv/bin/activate'], f'{command}: only the venv is sourced'
    elif program == 'export':
        assert all('=' in w for w in words[1:]), command
    elif program == 'bash' or program.endswith('.sh'):
        script = words[1] if program == 'bash' else program
        assert script.startswith('tools/install/') and (ROOT / script).is_file(), \
            f'{command}: env scripts are tools/install/*.sh'
    elif program in ('git', 'cd'):
        pass
    else:
        pytest.fail(f'{command}: no ci:env rule for {program!r} (ENV_PROGRAMS: {ENV_PROGRAMS})')


# --------------------------------------------------------------------- ci:help
class _Parsed(Exception):
    """Raised right after a script's parser accepted its arguments."""


def parse_with_script(script: str, args: List[str], monkeypatch) -> argparse.Namespace:
    """The namespace ``script``'s own parser makes of ``args``; the script stops there."""
    depth = [0]
    originals = {name: getattr(argparse.ArgumentParser, name)
                 for name in ('parse_args', 'parse_intermixed_args', 'parse_known_args')}

    def wrap(name):
        def parse(self, *a, **kw):
            depth[0] += 1
            try:
                result = originals[name](self, *a, **kw)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                raise _Parsed(result[0] if isinstance(result, tuple) else result)
            return result
        return parse

    with monkeypatch.context() as m:
        for name in originals:
            m.setattr(argparse.ArgumentParser, name, wrap(name))
        m.setattr(sys, 'argv', [str(ROOT / script), *args])
        m.chdir(ROOT)
        try:
            runpy.run_path(str(ROOT / script), run_name='__main__')
        except _Parsed as parsed:
            return parsed.args[0]
        except SystemExit as exc:
            pytest.fail(f'{script} {shlex.join(args)}: its parser refused (exit {exc.code})')
    pytest.fail(f'{script} never parsed its arguments')


@lru_cache()
def script_help(script: str) -> str:
    """``script --help`` run in this process: exits 0 and prints a usage."""
    out = io.StringIO()
    argv = sys.argv
    cwd = os.getcwd()
    sys.argv = [str(ROOT / script), '--help']
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(ROOT / script), run_name='__main__')
    except SystemExit as exc:
        assert exc.code in (0, None), f'{script} --help exited {exc.code}'
    finally:
        sys.argv = argv
        os.chdir(cwd)
    assert 'usage' in out.getvalue().lower(), f'{script} --help printed no usage'
    return out.getvalue()


@lru_cache()
def load_config(config: str):
    from mmengine.config import Config
    from mmevf.apis import resolve_config
    path = config if config.endswith('.py') else resolve_config(config)
    assert (ROOT / path).is_file() or Path(path).is_file(), f'config {config} does not exist'
    return Config.fromfile(str(ROOT / path) if (ROOT / path).is_file() else path)


def check_paths_and_configs(command: Command, words: List[str], namespace=None) -> None:
    for word in words:
        value = word.split('=', 1)[1] if word.startswith('--') and '=' in word else word
        if value.startswith(SHIPPED_PREFIXES):
            assert (ROOT / value).exists(), f'{command}: {value} does not exist'
            if value.endswith('.py') and '/configs/' in f'/{value}':
                load_config(value)
    config = getattr(namespace, 'config', None)
    if isinstance(config, str):
        assert not re.fullmatch(r'[A-Z_]+', config), \
            f'{command}: name a real config, not the placeholder {config}'
        load_config(config)


@pytest.mark.parametrize('command', [c for c in COMMANDS if c.cls == 'help'], ids=str)
def test_help_command(command, monkeypatch):
    _, words = split_command(command.text)
    script, args = script_of(words)
    if script:
        assert (ROOT / script).is_file(), f'{command}: {script} does not exist'
        script_help(script)
        namespace = parse_with_script(script, args, monkeypatch)
        check_paths_and_configs(command, words, namespace)
    elif words[:3] in (['python', '-m', 'pytest'], ['python3', '-m', 'pytest']):
        paths = [w for w in words[3:] if not w.startswith('-')]
        assert paths and all((ROOT / p).exists() for p in paths), f'{command}: test paths'
    elif words and words[0].lstrip('./') in LAUNCHERS:
        launcher = words[0].lstrip('./')
        assert (ROOT / launcher).is_file(), f'{command}: {launcher} does not exist'
        syntax = subprocess.run(['bash', '-n', str(ROOT / launcher)], capture_output=True)
        assert syntax.returncode == 0, syntax.stderr
        names, tool = LAUNCHERS[launcher]
        assert len(words) > len(names), f'{command}: {launcher} takes {" ".join(names).upper()}'
        given = dict(zip(names, words[1:]))
        if 'nproc' in given:
            assert given['nproc'].isdigit(), f'{command}: NUM_PROCESSES must be a number'
        passed = [given['config']] + ([given['checkpoint']] if 'checkpoint' in given else [])
        script_help(tool)
        namespace = parse_with_script(tool, passed + words[1 + len(names):], monkeypatch)
        check_paths_and_configs(command, words, namespace)
    else:
        pytest.fail(f'{command}: no ci:help rule (python <script.py>, python -m pytest, '
                    f'{", ".join(LAUNCHERS)})')


# --------------------------------------------------------------------- ci:run
@pytest.fixture(scope='module')
def sandbox(tmp_path_factory, synthref_root, tiny_checkpoint) -> Path:
    """A scratch repository root after `make demo`: the repository's code, a 40-image SynthRef
    and the session's random-weight tiny EVF-SAM checkpoint (``tiny_checkpoint`` of
    tests/conftest.py) as the last checkpoint of the demo's run."""
    root = tmp_path_factory.mktemp('doc_commands')
    for name in ('configs', 'tools', 'projects'):
        (root / name).symlink_to(ROOT / name)
    (root / 'data').mkdir()
    (root / 'data' / 'synthref').symlink_to(synthref_root)
    work_dir = root / 'work_dirs' / 'evf-tiny_synthref'
    work_dir.mkdir(parents=True)
    checkpoint = work_dir / 'iter_1400.pth'
    checkpoint.symlink_to(tiny_checkpoint)
    (work_dir / 'last_checkpoint').write_text(str(checkpoint))
    return root


def expand(text: str, cwd: Path) -> List[str]:
    """The words bash makes of ``text`` in ``cwd`` (quotes, ``$(...)``, variables)."""
    assert not re.search(r'[;&|<>]', re.sub(r'\$\([^)]*\)', '', text)), \
        f'{text}: one plain command per line in ci:run blocks'
    proc = subprocess.run(['bash', '-c', 'set -eu; eval "set -- $1"; printf "%s\\0" "$@"', '_',
                           text], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f'{text}: {proc.stderr}'
    return proc.stdout.split('\0')[:-1]


@pytest.mark.parametrize('command', [c for c in COMMANDS if c.cls == 'run'], ids=str)
def test_run_command(command, sandbox, monkeypatch):
    env, _ = split_command(command.text)
    words = expand(command.text, sandbox)
    words = words[len(env):]
    script, args = script_of(words)
    assert script in RUN_LIMITS, (f'{command}: ci:run runs only python {", ".join(RUN_LIMITS)};'
                                  f' mark it ci:help')
    limits = RUN_LIMITS[script]
    if script == 'tools/train.py' and '--work-dir' not in args:
        limits = CI_TRAIN_WORK_DIR + limits
    argv = [str(ROOT / script), *args, *limits]
    with monkeypatch.context() as m:
        m.chdir(sandbox)
        m.setattr(sys, 'argv', argv)
        for key, value in env.items():
            m.setenv(key, value)
        try:
            runpy.run_path(str(ROOT / script), run_name='__main__')
        except SystemExit as exc:
            assert exc.code in (0, None), f'{command}: exit {exc.code}'
