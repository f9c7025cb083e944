"""mmengine 0.10.7's ``DeepSpeedStrategy`` registers deepspeed's optimizers by importing
``deepspeed.runtime.fp16.onebit``, which deepspeed 0.19 removed."""
import importlib
import importlib.util
from typing import List


def register_deepspeed_optimizers() -> List[str]:
    """Register the optimizers the installed deepspeed provides; returns their names."""
    from mmengine.registry import OPTIMIZERS
    candidates = {
        'deepspeed.ops.adam': ('DeepSpeedCPUAdam', 'FusedAdam'),
        'deepspeed.ops.lamb': ('FusedLamb', ),
        'deepspeed.runtime.fp16.onebit': ('OnebitAdam', 'OnebitLamb', 'ZeroOneAdam'),
    }
    registered = []
    for module_name, names in candidates.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if hasattr(module, name):
                OPTIMIZERS.register_module(module=getattr(module, name), force=True)
                registered.append(name)
    return registered


def fix_deepspeed_strategy() -> bool:
    """Where deepspeed lacks ``onebit``, make mmengine's ``DeepSpeedStrategy`` register the
    optimizers that exist. Called by ``build_runner`` for configs with a DeepSpeed strategy
    only (importing deepspeed is slow); returns whether anything was changed."""
    import deepspeed  # noqa: F401  (find_spec of a submodule needs its package imported)
    import mmengine._strategy.deepspeed as mmengine_deepspeed
    if importlib.util.find_spec('deepspeed.runtime.fp16.onebit') is not None:
        return False
    mmengine_deepspeed.register_deepspeed_optimizers = register_deepspeed_optimizers
    return True


def skip_cpu_shm_comm_op() -> bool:
    """On a CPU accelerator, keep ``deepspeed.initialize`` from JIT-compiling deepspeed's
    shared-memory communication op: ninja builds it at the first launch of an environment
    (about a minute of a 2-core machine, and a C++ toolchain is needed; the shared
    ``~/.cache/torch_extensions`` build is redone whenever another environment built it last),
    yet only ``inference_all_reduce`` (DeepSpeed inference) uses it; training collectives go
    through torch.distributed (gloo). Returns whether the op was turned off."""
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator
    accelerator = get_accelerator()
    builder = accelerator.create_op_builder('ShareMemCommBuilder')
    if accelerator.device_name() != 'cpu' or builder is None:
        return False
    deepspeed.ops.__compatible_ops__[builder.NAME] = False
    return True
