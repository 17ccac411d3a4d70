"""silc-seg: SILC vision-language pretraining and dense prediction on OpenMMLab."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def parse_requirements(fname):
    """Read requirement specifiers from ``requirements/<fname>``, skipping comments."""
    reqs = []
    with open(osp.join(HERE, 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def get_version():
    with open(osp.join(HERE, 'silc_seg', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='silc-seg',
    version=get_version(),
    description='SILC vision-language pretraining with self-distillation, '
    'and zero-shot / open-vocabulary segmentation on MMSegmentation',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    package_data={'silc_seg': ['py.typed']},
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime.txt') +
    parse_requirements('mminstall.txt'),
    extras_require={
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
