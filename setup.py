"""silc-seg: SILC vision-language pretraining and dense prediction on OpenMMLab."""
import os
import os.path as osp
import re
import shutil
import sys

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


def add_mim_extension():
    """Ship ``configs/`` and ``tools/`` inside the package as ``silc_seg/.mim/`` (as mmseg does):
    copies for wheels and plain installs, links for editable installs. The package finds its
    configs there (``silc_seg.utils.get_config_path``), MMEngine resolves ``silc_seg::``
    config paths there, and ``mim`` finds the tools."""
    if {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink' if os.name != 'nt' else 'copy'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'silc_seg', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('configs', 'tools'):
        src_path, tar_path = osp.join(HERE, name), osp.join(mim_path, name)
        if osp.islink(tar_path) or osp.isfile(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, mim_path), tar_path)
        else:
            shutil.copytree(src_path, tar_path,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


add_mim_extension()

setup(
    name='silc-seg',
    version=get_version(),
    description='SILC vision-language pretraining with self-distillation, '
    'and zero-shot / open-vocabulary segmentation on MMSegmentation',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    package_data={
        'silc_seg': ['py.typed', 'models/utils/templates/*.txt', '.mim/configs/**/*',
                     '.mim/tools/**/*']
    },
    python_requires='>=3.9',
    install_requires=parse_requirements('runtime.txt') +
    parse_requirements('mminstall.txt'),
    extras_require={
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
        'app': parse_requirements('app.txt'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
