"""Shared helpers of the converter tests."""
import contextlib
import io
import os.path as osp

import open_clip
import torch

from silc_seg.converters import build_towers, verify_state_dict
from silc_seg.utils import get_config_path, import_file_as_module

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# Required agreement of converted towers with the reference implementations (fp32, eval).
TOLERANCE = 1e-4


def load_tool(name):
    return import_file_as_module(
        osp.join(REPO_ROOT, 'tools', 'model_converters', f'{name}.py'), name)


@torch.no_grad()
def perturb(model, seed=0):
    # OpenCLIP zero-initializes biases and sets LayerNorms to identity; random offsets make a
    # swapped or dropped bias / norm visible in the embeddings.
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if param.dim() <= 1 and 'logit' not in name:
            param.add_(0.1 * torch.randn_like(param))


def run_tool(tool, argv):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        tool.main(argv)
    return stdout.getvalue().strip().splitlines()


def load_converted(path, config):
    towers = build_towers(config)
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        state_dict = load_file(path)
    else:
        state_dict = torch.load(path, weights_only=True)['state_dict']
    verify_state_dict(state_dict, towers)
    return {name: module.eval() for name, module in towers.items()}, state_dict


def convert_with_tool(tmp_path, model_name, dst_name):
    torch.manual_seed(0)
    reference = open_clip.create_model(model_name, pretrained=None).eval()
    perturb(reference)
    src = tmp_path / f'{model_name}.pt'
    torch.save(reference.state_dict(), src)
    dst = str(tmp_path / dst_name)
    lines = run_tool(load_tool('openclip2silc'), [str(src), dst, '--model', model_name])
    config = lines[-1]
    assert config.startswith('configs/_base_/models/') and osp.isfile(get_config_path(config))
    towers, state_dict = load_converted(dst, config)
    return reference, towers, state_dict, config


def max_diff(a, b):
    return (a - b).abs().max().item()
