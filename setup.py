import os
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
# Shipped inside the package as mmevf/.mim/<name>, the layout of mmdet's wheels; an installed
# mmevf finds its config names there (mmevf.apis.config_root).
MIM_FILES = ('configs', )
# The start-up hook that lets mmdet / mmpretrain import mmpretrain's models without `import
# mmevf` first (mmevf/compat/import_hook.py): a copy of the module and a .pth running it, put at
# the root of site-packages by regular and editable installs alike.
IMPORT_HOOK_SOURCE = osp.join('mmevf', 'compat', 'import_hook.py')
IMPORT_HOOK_MODULE = '_mmevf_import_hook.py'
IMPORT_HOOK_PTH = ('mmevf-import-hook.pth',
                   'import _mmevf_import_hook; _mmevf_import_hook.install()\n')


def read_requirements(path: str) -> list:
    """Requirement lines of a requirements/*.txt file, without comments and includes."""
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


class BuildPyWithMim(build_py):
    """``build_py`` that also copies ``configs/`` to ``<build>/mmevf/.mim/configs``.

    Config names (``'evf-tiny_synthref'``) and their relative ``_base_`` files must resolve
    in a non-editable install, where the repository's configs/ is not next to the package.
    Copying into the build folder (not the source tree) leaves the checkout clean; an
    editable install skips it, as it reads the checkout's configs/ directly.

    It also writes the start-up hook (``IMPORT_HOOK_MODULE`` and ``IMPORT_HOOK_PTH``) at the
    root of site-packages, in editable installs too: see :meth:`import_hook_dir`.
    """

    def run(self) -> None:
        super().run()
        self.write_import_hook()
        if getattr(self, 'editable_mode', False):
            return
        for name in MIM_FILES:
            source = osp.join(ROOT, name)
            if not osp.isdir(source):  # an sdist made without MANIFEST.in
                raise FileNotFoundError(f'{source} is missing: cannot ship mmevf/.mim/{name}')
            target = osp.join(self.build_lib, 'mmevf', '.mim', name)
            if osp.isdir(target):  # a previous build's copy may hold deleted configs
                shutil.rmtree(target)
            shutil.copytree(source, target,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))

    def import_hook_dir(self) -> str:
        """Where the start-up hook's files go: the root of what is installed into site-packages.

        A regular build installs ``build_lib`` as is. An editable build (PEP 660) installs a
        wheel holding only its own .pth / finder and what the ``install`` command's
        ``install_lib`` folder holds: ``editable_wheel`` points it at that wheel's root.
        """
        if getattr(self, 'editable_mode', False):
            return self.get_finalized_command('install').install_lib
        return self.build_lib

    def write_import_hook(self) -> None:
        folder = self.import_hook_dir()
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(osp.join(ROOT, IMPORT_HOOK_SOURCE), osp.join(folder, IMPORT_HOOK_MODULE))
        name, line = IMPORT_HOOK_PTH
        with open(osp.join(folder, name), 'w') as f:
            f.write(line)

    def get_outputs(self, *args, **kwargs) -> list:
        outputs = list(super().get_outputs(*args, **kwargs))
        if not getattr(self, 'editable_mode', False):
            outputs += [osp.join(self.build_lib, name)
                        for name in (IMPORT_HOOK_MODULE, IMPORT_HOOK_PTH[0])]
        return outputs


version = {}
with open('mmevf/version.py') as f:
    exec(f.read(), version)

setup(
    name='mmevf',
    version=version['__version__'],
    description='Text prompts for Segment Anything (EVF-SAM, DIT) as OpenMMLab modules',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmevf', 'mmevf.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.1', 'torchvision', 'mmcv==2.1.0'] +
    read_requirements('requirements/runtime.txt'),
    extras_require={
        'optional': read_requirements('requirements/optional.txt'),
        'tests': read_requirements('requirements/tests.txt'),
    },
    license='Apache-2.0',
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
)
