"""A plain ``pip install`` of the package (no optional extras, not run from the checkout): it
imports, finds its own configs (shipped in ``silc_seg/.mim/configs``), builds every registered
model type and runs ``tools/test.py`` (shipped in ``silc_seg/.mim/tools``) on the demo data, with
``open_clip``, ``sentencepiece``, ``webdataset`` and ``tensorboard`` made unimportable."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import open_clip.zero_shot_metadata as reference_templates
import pytest

from silc_seg.models.utils import PROMPT_TEMPLATE_SETS

REPO = Path(__file__).resolve().parents[2]
OPTIONAL_EXTRAS = ('open_clip', 'sentencepiece', 'webdataset', 'tensorboard')

SCRIPT = textwrap.dedent('''
    import importlib.abc
    import os
    import runpy
    import sys

    SITE, BLOCKED = sys.argv[1], tuple(sys.argv[2].split(','))


    class BlockOptionalExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ModuleNotFoundError(f'No module named {name!r} (optional extra, blocked)')
            return None


    # The installed copy, not the checkout (nor the venv's editable install of it).
    sys.meta_path[:] = [BlockOptionalExtras()] + [
        f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]
    sys.path[:] = [SITE] + [p for p in sys.path if p not in ('', os.getcwd())
                            and not os.path.isfile(os.path.join(p, 'setup.py'))]

    import silc_seg
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from silc_seg.registry import MODELS
    from silc_seg.utils import configs_root

    assert silc_seg.__file__.startswith(SITE), silc_seg.__file__
    assert configs_root() == os.path.join(SITE, 'silc_seg', '.mim', 'configs'), configs_root()
    for name in BLOCKED:
        assert name not in sys.modules, name
    init_default_scope('mmseg')

    built = set()


    def build(cfg):
        model = MODELS.build(cfg)
        built.update(type(module).__name__ for module in model.modules())
        for attribute in ('tokenizer', 'contrastive_loss', 'distill_loss'):
            if hasattr(model, attribute):
                built.add(type(getattr(model, attribute)).__name__)
        return model


    # The tiny demo configs (every pretraining objective) and one config of each B/16 model kind.
    demos = sorted(f'silc/{name}' for name in os.listdir(os.path.join(configs_root(), 'silc'))
                   if name.startswith('demo_'))
    for config in demos + ['silc/zs_demo.py', 'silc/catseg_b16_ade150.py',
                           'silc/zs_siglip_vit-b-16_ade150.py',
                           'silc/zs_siglip2_vit-b-16-naflex_ade150.py',
                           'zero_shot/scclip/scclip_vit-b16_ade150.py',
                           'zero_shot/resclip/resclip_vit-b16_ade150.py',
                           'zero_shot/proxyclip/proxyclip_vit-b16_ade150.py',
                           'zero_shot/cass/cass_vit-b16_ade150.py']:
        build(Config.fromfile(os.path.join(configs_root(), config)).model)
    zs_demo = Config.fromfile(os.path.join(configs_root(), 'silc/zs_demo.py')).model
    build(dict(type='ScoreAveragingTTAModel', module=zs_demo))
    build(dict(type='SigLipLoss'))
    build(dict(type='BatchPhotometricAugment'))  # the large recipes' device-side augmentation
    registered = {name for name, cls in MODELS.module_dict.items()
                  if cls.__module__.startswith('silc_seg.')}
    assert registered <= built, sorted(registered - built)
    print('built every registered model type:', ', '.join(sorted(registered)))

    # tools/test.py and the demo config as shipped in the package.
    tools = os.path.join(SITE, 'silc_seg', '.mim', 'tools')
    sys.argv = [os.path.join(tools, 'test.py'), os.path.join(configs_root(), 'silc/zs_demo.py'),
                'random_towers.pth', '--work-dir', 'work']
    runpy.run_path(sys.argv[0], run_name='__main__')
    for name in BLOCKED:
        assert name not in sys.modules, name
''')


def test_templates_are_openai_imagenet_templates():
    """The shipped template files hold exactly OpenAI's ImageNet templates (open_clip's copy)."""
    assert PROMPT_TEMPLATE_SETS['imagenet80'] == [
        t('{}') for t in reference_templates.OPENAI_IMAGENET_TEMPLATES
    ]
    assert len(PROMPT_TEMPLATE_SETS['imagenet80']) == 80
    assert PROMPT_TEMPLATE_SETS['short'] == [
        t('{}') for t in reference_templates.SIMPLE_IMAGENET_TEMPLATES
    ]


@pytest.mark.slow
def test_plain_install_without_optional_extras(tmp_path):
    source = tmp_path / 'src'
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info')
    for name in ('silc_seg', 'configs', 'tools', 'requirements'):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    for name in ('setup.py', 'README.md'):
        shutil.copy(REPO / name, source / name)
    site = tmp_path / 'site'
    install = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index',
        '--quiet', '--target',
        str(site),
        str(source)
    ],
                             capture_output=True,
                             text=True,
                             timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    shipped = site / 'silc_seg'
    assert (shipped / '.mim' / 'configs' / 'silc' / 'zs_demo.py').is_file()
    assert (shipped / '.mim' / 'tools' / 'test.py').is_file()
    assert (shipped / 'models' / 'utils' / 'templates' / 'imagenet80.txt').is_file()

    work = tmp_path / 'work'
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = str(site)
    make_data = subprocess.run([
        sys.executable,
        str(shipped / '.mim' / 'tools' / 'misc' / 'make_demo_data.py'), '--out', 'data/demo',
        '--num-train', '8', '--num-val', '4'
    ],
                               cwd=work,
                               env=env,
                               capture_output=True,
                               text=True,
                               timeout=300)
    assert make_data.returncode == 0, make_data.stderr[-3000:]
    (work / 'run.py').write_text(SCRIPT)
    # Random tiny towers, as a SILC pretraining checkpoint of the demo config would hold them.
    save = subprocess.run([
        sys.executable, '-c',
        textwrap.dedent('''
            import torch
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            import silc_seg
            from silc_seg.registry import MODELS
            from silc_seg.utils import get_config_path
            init_default_scope('mmseg')
            torch.manual_seed(0)
            model = MODELS.build(Config.fromfile(get_config_path('silc/demo_silc_tiny.py')).model)
            torch.save(dict(state_dict=model.state_dict()), 'random_towers.pth')
        ''')
    ],
                          cwd=work,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert save.returncode == 0, save.stderr[-3000:]
    result = subprocess.run(
        [sys.executable, 'run.py', str(site), ','.join(OPTIONAL_EXTRAS)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert ('built every registered model type: BatchPhotometricAugment, CASSDense, '
            'CASSSegmentor, CASSTextAdjustment, CATSeg, CATSegHead') in output
    assert 'mIoU:' in output
