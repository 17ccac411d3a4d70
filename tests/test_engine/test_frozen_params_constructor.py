"""The SILC optimizer setup logs its frozen (EMA teacher) parameters in one line, not one each."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor, build_optim_wrapper
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.registry import MODELS
from tests.mmengine_log import captured_log

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_demo_silc_frozen_teacher_logged_once_and_param_groups_unchanged():
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'silc', 'demo_silc_tiny.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    frozen = [name for name, param in model.named_parameters() if not param.requires_grad]
    assert len(frozen) > 50  # the whole EMA teacher
    with captured_log() as messages:
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    skipped = [m for _, m in messages if 'requires_grad=False' in m]
    assert skipped == [
        f'{len(frozen)} parameters with requires_grad=False are not optimized '
        '(distill_head.*, teacher_image_encoder.*, teacher_head.*)'
    ]
    # Same parameter groups as MMEngine's default constructor builds.
    default_cfg = cfg.optim_wrapper.copy()
    default_cfg.pop('constructor')
    paramwise_cfg = default_cfg.pop('paramwise_cfg')
    reference = DefaultOptimWrapperConstructor(default_cfg, paramwise_cfg)(model)
    ours, theirs = optim_wrapper.optimizer.param_groups, reference.optimizer.param_groups
    assert len(ours) == len(theirs)
    for group, expected in zip(ours, theirs):
        assert [id(p) for p in group['params']] == [id(p) for p in expected['params']]
        assert {k: v for k, v in group.items() if k != 'params'} == \
            {k: v for k, v in expected.items() if k != 'params'}
