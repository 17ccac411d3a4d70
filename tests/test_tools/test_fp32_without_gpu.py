"""GPU configs (bf16 AMP) train on a machine without a GPU in fp32, with one warning."""
import logging
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.utils import fp32_without_gpu
from tests.mmengine_log import captured_log

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_pretrain_b16_amp_becomes_fp32_without_gpu(monkeypatch):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'silc', 'pretrain_b16.py'))
    assert cfg.optim_wrapper.type == 'NonFiniteGuardAmpOptimWrapper'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert not fp32_without_gpu(cfg)  # a GPU machine keeps the config
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with captured_log() as messages:
        assert fp32_without_gpu(cfg)
        assert not fp32_without_gpu(cfg)  # already fp32: nothing more to say
    assert messages == [(logging.WARNING, 'No GPU: training in fp32 '
                         '(NonFiniteGuardAmpOptimWrapper -> NonFiniteGuardOptimWrapper, '
                         'ignoring dtype)')]
    assert cfg.optim_wrapper.type == 'NonFiniteGuardOptimWrapper'
    assert 'dtype' not in cfg.optim_wrapper
    # The fp32 wrapper builds and steps on CPU (the AMP one stops: "only available on gpu").
    init_default_scope('mmseg')
    model = torch.nn.Linear(3, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    wrapper.update_params(model(torch.ones(4, 3)).sum())
