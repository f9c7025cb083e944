from .compat import load_checkpoint_file, setup_cpu_distributed
from .setup_env import build_runner, load_config, register_all_modules

__all__ = [
    'build_runner', 'load_checkpoint_file', 'load_config', 'register_all_modules',
    'setup_cpu_distributed'
]
