from setuptools import find_packages, setup


def read_requirements(path: str) -> list:
    """Requirement lines of a requirements/*.txt file, without comments and includes."""
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


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
    zip_safe=False,
)
