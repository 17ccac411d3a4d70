"""--cfg-options keys are checked against the loaded config: a misspelled key stops the tool with
the closest existing key instead of being silently ignored."""
import argparse
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from silc_seg.utils import (add_cfg_options_argument, add_launcher_arguments, export_local_rank,
                            load_config, merge_cfg_options)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _demo_cfg():
    return Config.fromfile(osp.join(REPO, 'configs', 'silc', 'demo_silc_tiny.py'))


def _zs_cfg():
    return Config.fromfile(osp.join(REPO, 'configs', 'silc', 'zs_ade150.py'))


@pytest.mark.slow
@pytest.mark.parametrize('load,options,wrong,suggestion', [
    (_demo_cfg, {
        'train_cfgg.max_iters': 3
    }, 'train_cfgg', 'train_cfg'),
    (_zs_cfg, {
        'model.test_cfg.strid': (16, 16)
    }, 'model.test_cfg.strid', 'model.test_cfg.stride'),
    (_demo_cfg, {
        'custom_hooks.0.freeze_iter': 9
    }, 'custom_hooks.0.freeze_iter', 'custom_hooks.0.freeze_iters'),
])
def test_misspelled_key_stops_with_closest_existing_key(load, options, wrong, suggestion):
    cfg = load()
    before = cfg.to_dict()
    with pytest.raises(KeyError) as error:
        merge_cfg_options(cfg, options)
    message = str(error.value)
    assert f'`{wrong}`' in message and f'did you mean `{suggestion}`' in message
    assert cfg.to_dict() == before  # nothing merged


def test_new_keys_a_module_or_the_runner_takes_need_no_plus():
    cfg = _demo_cfg()
    assert 'drop_path_rate' not in cfg.model.image_encoder
    merge_cfg_options(
        cfg,
        {
            'model.image_encoder.drop_path_rate': 0.1,  # a keyword of SILCVisionTransformer
            'randomness.deterministic': True,  # read by Runner.set_randomness
            'train_dataloader.prefetch_factor': 4,  # a DataLoader argument
        })
    assert cfg.model.image_encoder.drop_path_rate == 0.1 and cfg.randomness.deterministic
    assert cfg.train_dataloader.prefetch_factor == 4
    with pytest.raises(KeyError, match='did you mean `model.image_encoder.drop_path_rate`'):
        merge_cfg_options(cfg, {'model.image_encoder.drop_path_rat': 0.1})


def test_list_index_out_of_range_is_an_error():
    with pytest.raises(KeyError, match=r'custom_hooks has 3 items'):
        merge_cfg_options(_demo_cfg(), {'custom_hooks.7.freeze_iters': 9})


@pytest.mark.slow
def test_existing_keys_new_keys_with_plus_and_keys_of_empty_dicts_merge():
    cfg = _zs_cfg()
    merge_cfg_options(
        cfg,
        {
            'model.test_cfg.stride': (16, 16),
            'train_dataloader': None,
            # An explicit new key (a dict that takes arbitrary kwargs), Hydra's "+" convention.
            '+model.test_cfg.new_setting': 3,
            # Runner settings that configs often leave out.
            'find_unused_parameters': True,
            'resume': True,
        })
    assert cfg.model.test_cfg.stride == (16, 16) and cfg.model.test_cfg.new_setting == 3
    assert cfg.find_unused_parameters is True and cfg.train_dataloader is None
    cfg = _demo_cfg()
    # dist_cfg takes any keyword of init_process_group, but a new one needs the "+".
    with pytest.raises(KeyError, match=r'\+env_cfg.dist_cfg.timeout=...'):
        merge_cfg_options(cfg, {'env_cfg.dist_cfg.timeout': 60})
    merge_cfg_options(
        cfg, {
            '+env_cfg.dist_cfg.timeout': 60,
            'custom_hooks.0.freeze_iters': 9,
            'model.teacher.end_momentum': 0.999
        })
    assert cfg.env_cfg.dist_cfg.timeout == 60 and cfg.custom_hooks[0].freeze_iters == 9
    assert cfg.model.teacher.end_momentum == 0.999
    cfg = Config(dict(model=dict(test_cfg=dict())))
    merge_cfg_options(cfg, {'model.test_cfg.mode': 'whole'})
    assert cfg.model.test_cfg.mode == 'whole'


@pytest.mark.slow
@pytest.mark.parametrize('tool,args', [
    ('train.py', ['configs/silc/demo_silc_tiny.py', '--cfg-options', 'train_cfgg.max_iters=3']),
    ('test.py',
     ['configs/silc/zs_demo.py', 'missing.pth', '--cfg-options', 'model.test_cfg.strid=(16,16)']),
    ('demo.py', [
        'tests/data/none.png', '--classes', 'a,b', '--config', 'configs/silc/zs_demo.py',
        '--checkpoint', 'missing.pth', '--cfg-options', 'model.test_cfg.strid=(16,16)'
    ]),
])
def test_tools_stop_on_misspelled_override(tool, args, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([
        sys.executable,
        osp.join('tools', tool), *args, '--work-dir' if tool != 'demo.py' else '--out',
        str(tmp_path / 'out')
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode != 0
    assert 'did you mean' in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr, result.stderr[-2000:]
    # Nothing else: MMEngine's two pkg_resources warnings per command are gone.
    assert 'pkg_resources' not in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_load_config_merges_parsed_options_and_exits_on_a_misspelled_key():
    parser = argparse.ArgumentParser()
    add_cfg_options_argument(parser)
    path = osp.join(REPO, 'configs', 'silc', 'demo_silc_tiny.py')
    good = parser.parse_args(
        ['--cfg-options', 'train_cfg.max_iters=3', 'model.teacher.momentum=0.5'])
    cfg = load_config(path, good.cfg_options)
    assert cfg.train_cfg.max_iters == 3 and cfg.model.teacher.momentum == 0.5
    assert load_config(path, None).to_dict() == _demo_cfg().to_dict()
    bad = parser.parse_args(['--cfg-options', 'train_cfgg.max_iters=3'])
    with pytest.raises(SystemExit) as error:
        load_config(path, bad.cfg_options)
    message = str(error.value)
    assert message.startswith('--cfg-options ') and 'did you mean `train_cfg`' in message


def test_launcher_arguments_and_local_rank(monkeypatch):
    parser = argparse.ArgumentParser()
    add_launcher_arguments(parser)
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = export_local_rank(parser.parse_args(['--launcher', 'pytorch', '--local-rank', '3']))
    assert (args.launcher, args.local_rank, os.environ['LOCAL_RANK']) == ('pytorch', 3, '3')
    # A rank the launcher exported wins over the argument.
    monkeypatch.setenv('LOCAL_RANK', '1')
    export_local_rank(parser.parse_args(['--local_rank', '2']))
    assert os.environ['LOCAL_RANK'] == '1'
    assert parser.parse_args([]).launcher == 'none'
