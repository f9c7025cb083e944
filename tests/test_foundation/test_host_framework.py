"""`import mmevf` inside a plain mmdet job (as its `custom_imports` would) changes nothing but
what docs/advanced_guides/dependency_fixes.md lists: the local checkpoint loader. The same run,
with and without mmevf imported, trains to the same weights and leaves the same process state.

Both runs share one interpreter: everything before `import mmevf` (SETUP) runs once, then each
run in a fork of it (tests/fixtures/forked_cases.py), so the
two start from the same state, as two interpreters running the same script did."""
import json
import os
from pathlib import Path

from tests.fixtures.forked_cases import check, run_in_forks

ROOT = Path(__file__).resolve().parents[2]

# A plain mmdet job up to where its `custom_imports` would import mmevf.
SETUP = r'''
import json, sys, tempfile
import torch, torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import (DATASETS, HOOKS, MODELS, OPTIMIZERS, STRATEGIES, TRANSFORMS,
                               WEIGHT_INITIALIZERS)
from mmengine.runner import CheckpointLoader, Runner
from mmengine.fileio.backends import registry_utils
from torch.utils.data import Dataset
try:  # mmpretrain 1.2 (an mmevf requirement) cannot import its multimodal models under
    # transformers 5, and mmdet.models imports mmpretrain.models: a working host job has them
    # off (mmevf/compat/mmpretrain.py), in both runs
    import mmpretrain.utils.dependency
    mmpretrain.utils.dependency.WITH_MULTIMODAL = False
except ImportError:
    pass
import mmdet.engine, mmdet.models  # noqa: F401
'''

# Then a plain mmdet-scope run: model and data registered in mmengine's roots, mmdet's default
# runtime, 4 iterations with a checkpoint; then the process state a host framework relies on.
RUN = r'''
@DATASETS.register_module()
class HostData(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 4, generator=g)
    def __len__(self):
        return 16
    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.x[i].sum())

@MODELS.register_module()
class HostModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)[:, 0]
        return dict(loss=((out - data_samples) ** 2).mean()) if mode == 'loss' else out

work_dir = tempfile.mkdtemp()
runner = Runner(
    model=dict(type='HostModel'), work_dir=work_dir, default_scope='mmdet',
    train_dataloader=dict(batch_size=4, num_workers=0, dataset=dict(type='HostData'),
                          sampler=dict(type='DefaultSampler', shuffle=False),
                          collate_fn=dict(type='default_collate')),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
    train_cfg=dict(by_epoch=False, max_iters=4),
    default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
    randomness=dict(seed=0))
runner.train()
ckpt = torch.load(f'{work_dir}/iter_4.pth', weights_only=False)
name = lambda obj: f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", obj)}'
print('RESULT', json.dumps(dict(
    weights={k: v.tolist() for k, v in ckpt['state_dict'].items()},
    backends={k: name(v) for k, v in registry_utils.backends.items()},
    prefix_backends={k: name(v) for k, v in registry_utils.prefix_to_backends.items()},
    schemes={k: name(v) for k, v in CheckpointLoader._schemes.items()},
    registries={r.name: sorted(r.module_dict) for r in (
        DATASETS, HOOKS, MODELS, OPTIMIZERS, STRATEGIES, TRANSFORMS, WEIGHT_INITIALIZERS)},
    deepspeed_imported='deepspeed' in sys.modules,
    torch_load=name(torch.load),
)))
'''


def test_importing_mmevf_into_an_mmdet_run_changes_only_the_documented_fix():
    runs = run_in_forks(SETUP, {'without': RUN, 'with': f'import mmevf  # noqa: F401\n{RUN}'},
                        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'))
    plain, hosted = (json.loads(check(runs, mode)[-1]) for mode in ('without', 'with'))
    assert hosted['weights'] == plain['weights']  # the same training
    # the one documented change: mmevf's local checkpoint loader (weights_only with MMEngine's
    # objects allowed where mmengine <= 0.10.7 needs it; safetensors; shards)
    assert plain['schemes'].pop('') != hosted['schemes'].pop('')
    assert hosted['schemes'] == plain['schemes']
    # atomic writes are a backend of their own name, not a replacement of 'local'
    assert hosted['backends'].pop('atomic_local').endswith('AtomicLocalBackend')
    # mmevf's DeepSpeed fix is applied by its build_runner, for DeepSpeed configs only
    for key in ('backends', 'prefix_backends', 'registries', 'torch_load', 'deepspeed_imported'):
        assert hosted[key] == plain[key], key
