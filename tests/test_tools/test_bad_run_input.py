"""Run settings and data as a new user gets them wrong (issue 24, item 3): ``--resume`` with
nothing to resume, ``train_cfg.max_iters`` overridden alone, a pretraining manifest without
labels, and a segmentation data root that is empty or holds other image types."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from silc_seg.datasets import DataLayoutError, check_seg_dataset_layout
from silc_seg.utils import prepare_runner_cfg
from silc_seg.utils.demo_data import make_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_PRETRAIN = osp.join(REPO, 'configs', 'silc', 'demo_clip_tiny.py')


def run_tool(*args, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_resume_with_nothing_to_resume_stops(tmp_path):
    """On main: 'Auto resumed from the latest checkpoint None.', a fresh run, rc 0."""
    (tmp_path / 'empty').mkdir()
    for work_dir, state in ((tmp_path / 'empty', 'is empty'), (tmp_path / 'mistyped',
                                                               'does not exist')):
        result = run_tool(
            'tools/train.py', DEMO_PRETRAIN, '--work-dir', str(work_dir), '--resume', timeout=300)
        assert result.returncode != 0
        assert f'--resume: nothing to resume: the work dir {work_dir} {state}' in result.stderr
        assert 'Traceback' not in result.stderr and 'Iter(train)' not in result.stdout


def _lr_at(cfg, iteration):
    """The learning rate MMEngine's schedulers of ``cfg`` give at ``iteration``."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                lr=cfg.optim_wrapper.optimizer.lr)
    wrapper = OptimWrapper(optimizer)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(scheduler, optimizer=wrapper))
        for scheduler in cfg.param_scheduler
    ]
    for _ in range(iteration):
        for scheduler in schedulers:
            scheduler.step()
    return optimizer.param_groups[0]['lr']


@pytest.mark.slow
def test_max_iters_override_moves_the_schedule_and_intervals():
    """On main the cosine schedule still ended at iteration 200, and the checkpoint and the
    validation came at 200: a run of 50 iterations saved nothing and ended at a high lr."""
    cfg = Config.fromfile(DEMO_PRETRAIN)
    base_lr, warmup = cfg.optim_wrapper.optimizer.lr, cfg.param_scheduler[0].end
    prepare_runner_cfg(cfg, DEMO_PRETRAIN, cfg_options={'train_cfg.max_iters': 50})
    warm, cosine = cfg.param_scheduler
    assert (warm.begin, warm.end) == (0, warmup)  # the warm-up is not tied to the length
    assert (cosine.begin, cosine.end, cosine.T_max) == (warmup, 50, 50 - warmup)
    assert cfg.train_cfg.val_interval == 50 and cfg.default_hooks.checkpoint.interval == 50
    # The schedule, as MMEngine steps it: cosine from base_lr at the warm-up's end towards
    # eta_min at the new end (eta_min + (lr - eta_min)(1 + cos(pi t / T)) / 2, T = 30); the
    # last iteration (49) is t = 29. The old schedule (T = 180) would still be near base_lr.
    eta_min = cosine.eta_min
    for t in (0, 10, 29):
        expected = eta_min + (base_lr - eta_min) * (1 + np.cos(np.pi * t / 30)) / 2
        assert abs(_lr_at(cfg, warmup + t) - expected) < 1e-9 * base_lr
    # Keys given with it are kept as given; other lengths are untouched.
    cfg = Config.fromfile(DEMO_PRETRAIN)
    prepare_runner_cfg(
        cfg,
        DEMO_PRETRAIN,
        cfg_options={
            'train_cfg.max_iters': 80,
            'default_hooks.checkpoint.interval': 40
        })
    assert cfg.default_hooks.checkpoint.interval == 40 and cfg.param_scheduler[1].end == 80
    # Shorter than the warm-up (a smoke test): the cosine phase is never reached, left as is.
    cfg = Config.fromfile(DEMO_PRETRAIN)
    prepare_runner_cfg(cfg, DEMO_PRETRAIN, cfg_options={'train_cfg.max_iters': 2})
    assert (cfg.param_scheduler[1].begin, cfg.param_scheduler[1].end) == (warmup, 200)
    assert cfg.default_hooks.checkpoint.interval == 2
    _lr_at(cfg, 2)  # MMEngine builds the schedulers (end > begin)
    cfg = Config.fromfile(DEMO_PRETRAIN)
    prepare_runner_cfg(cfg, DEMO_PRETRAIN, cfg_options={'train_cfg.val_interval': 5})
    assert cfg.param_scheduler[1].end == 200 and cfg.default_hooks.checkpoint.interval == 200


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(str(root), num_train=16, num_val=8, image_size=96, seed=0, num_seg_train=0)
    return root


def _strip_labels(root, name):
    path = root / 'annotations' / name
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stripped = root / 'annotations' / name.replace('.jsonl', '_nolabels.jsonl')
    stripped.write_text(''.join(
        json.dumps({
            k: v
            for k, v in record.items() if k != 'labels'
        }) + '\n' for record in records))
    return str(stripped.relative_to(root))


def _train(demo_root, work_dir, *options):
    return run_tool('tools/train.py', DEMO_PRETRAIN, '--work-dir', str(work_dir), '--cfg-options',
                    f'train_dataloader.dataset.data_root={demo_root}',
                    f'val_dataloader.dataset.data_root={demo_root}',
                    'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
                    'val_dataloader.persistent_workers=False', 'val_dataloader.batch_size=8',
                    'train_cfg.max_iters=2', 'default_hooks.logger.interval=1', *options)


@pytest.mark.slow
def test_manifest_without_labels_validates_retrieval_only(demo_root, tmp_path):
    """On main: all iterations, then KeyError: 'gt_label' (or 'pred_score' with
    model.zero_shot_classes=None) in the zero-shot AP evaluator, rc 1."""
    val = _strip_labels(demo_root, 'pretrain_val.jsonl')
    train = _strip_labels(demo_root, 'pretrain_train.jsonl')
    for extra, reason in (
        ([f'train_dataloader.dataset.ann_file={train}', f'val_dataloader.dataset.ann_file={val}'],
         'has labels (the manifest has no "labels" field)'),
        (['model.zero_shot_classes=None'], 'the model has no zero_shot_classes'),
    ):
        result = _train(demo_root, tmp_path / reason[:8], *extra)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert 'AveragePrecision left out because' in output and reason in output
        # Said before iteration 1; validation ran and gave recall.
        assert output.index('left out because') < output.index('Iter(train) [1/2]')
        assert 'Iter(val)' in output and 'retrieval/i2t_R@1' in output, output[-3000:]
        assert "KeyError" not in output


@pytest.mark.slow
def test_mixed_or_out_of_range_labels_stop_before_training(demo_root):
    from mmengine.runner import BaseLoop

    from silc_seg.engine.hooks import FitEvaluatorsHook
    from silc_seg.registry import DATASETS

    class Loop(BaseLoop):

        def __init__(self, dataset, metrics):
            self.dataloader = type('Loader', (), dict(dataset=dataset))()
            self.evaluator = type('Evaluator', (), dict(metrics=metrics))()

        def run(self):
            pass

    from mmpretrain.evaluation import AveragePrecision

    from silc_seg.evaluation.metrics import ImageTextRetrievalRecall
    records = [
        json.loads(line)
        for line in (demo_root / 'annotations/pretrain_val.jsonl').read_text().splitlines()
    ]
    records[0].pop('labels')
    records[1]['labels'] = [16]
    for broken, message in ((records[:1] + records[2:], '6 of 7 samples have "labels"'),
                            (records[1:], 'label 16 is no index of the model\'s 16')):
        path = demo_root / 'annotations' / 'broken.jsonl'
        path.write_text(''.join(json.dumps(r) + '\n' for r in broken))
        dataset = DATASETS.build(
            dict(
                type='ImageTextManifestDataset',
                data_root=str(demo_root),
                ann_file='annotations/broken.jsonl',
                test_mode=True))
        runner = type(
            'Runner', (),
            dict(
                model=type('Model', (torch.nn.Module, ), dict(zero_shot_classes=['c'] * 16))(),
                _val_loop=Loop(
                    dataset,
                    [ImageTextRetrievalRecall(), AveragePrecision()])))()
        with pytest.raises(ValueError, match=message):
            FitEvaluatorsHook().before_run(runner)


def _ade_config(data_root, **dataset):
    return dict(
        type='ADE20KDataset',
        data_root=str(data_root),
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        **dataset)


def test_segmentation_layout_is_checked_and_explained(tmp_path):
    from tests.test_zero_shot.tiny_datasets import make_ade20k
    root = tmp_path / 'ADEChallengeData2016'
    name = 'test_dataloader.dataset'
    with pytest.raises(
            DataLayoutError,
            match=r'expected the images in .*images/validation '
            r'\(data_root=.* \+ data_prefix.img_path=\'images/validation\'\), which '
            'is not a folder'):
        check_seg_dataset_layout(_ade_config(root), name)
    root.mkdir()
    (root / 'images' / 'validation').mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r'no \*.jpg images in .* it holds no files'):
        check_seg_dataset_layout(_ade_config(root), name)
    make_ade20k(str(root))
    assert check_seg_dataset_layout(_ade_config(root), name) == 2
    for image in (root / 'images' / 'validation').iterdir():  # PNG images instead of JPEG
        Image.open(image).save(image.with_suffix('.png'))
        image.unlink()
    with pytest.raises(
            DataLayoutError,
            match=r"it holds 2 \.png\. Images of another extension:"
            r" --cfg-options test_dataloader.dataset.img_suffix=.EXT"):
        check_seg_dataset_layout(_ade_config(root), name)
    assert check_seg_dataset_layout(_ade_config(root, img_suffix='.png'), name) == 2
    (root / 'annotations' / 'validation' / 'ADE_val_00000001.png').unlink()
    with pytest.raises(DataLayoutError, match=r'1 of 2 images .* have no label map \*.png'):
        check_seg_dataset_layout(_ade_config(root, img_suffix='.png'), name)
    assert check_seg_dataset_layout(dict(type='ImageTextManifestDataset'), name) is None


@pytest.mark.slow
def test_test_tool_checks_the_data_before_the_model(tmp_path):
    """On main: the model and the checkpoint loaded, then a 45-line traceback (empty data root),
    or ``ValueError: need at least one array to concatenate`` (images of another type)."""
    empty = tmp_path / 'ade'
    empty.mkdir()
    result = run_tool(
        'tools/test.py',
        'configs/silc/zs_ade150.py',
        str(tmp_path / 'none.pth'),
        '--work-dir',
        str(tmp_path / 'work'),
        '--cfg-options',
        f'test_dataloader.dataset.data_root={empty}',
        timeout=300)
    assert result.returncode != 0
    assert 'test_dataloader.dataset (ADE20KDataset): expected the images in' in result.stderr
    assert f'({empty} holds: nothing)' in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr and 'none.pth' not in result.stderr
