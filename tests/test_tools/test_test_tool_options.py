"""tools/test.py options that change the config: --show-dir."""
import os.path as osp
from argparse import Namespace

import pytest
from mmengine.config import Config

from silc_seg.utils import import_file_as_module

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool(name):
    """Import ``tools/<name>.py`` as a module (tools/ is not a package)."""
    return import_file_as_module(osp.join(REPO, 'tools', f'{name}.py'), f'silc_tool_{name}')


@pytest.mark.parametrize('config', ['catseg_b16_ade150.py', 'zs_ade150.py'])
def test_show_dir_saves_every_image_whatever_the_config_interval(config, tmp_path):
    # The CAT-Seg configs keep SegVisualizationHook's default interval (50): with it, --show-dir
    # saved nothing for a short test set.
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'silc', config))
    args = Namespace(show=False, show_dir=str(tmp_path), wait_time=2)
    cfg = load_tool('test').trigger_visualization_hook(cfg, args)
    hook = cfg.default_hooks.visualization
    assert hook.draw and hook.interval == 1
    assert cfg.visualizer.save_dir == str(tmp_path)
    # The overlays go to DIR/<image name>.png, where the README says (not vis_data/vis_image/).
    assert hook.type == 'SegOverlayHook' and hook.out_dir == str(tmp_path)
