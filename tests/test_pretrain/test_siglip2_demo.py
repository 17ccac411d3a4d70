"""The SigLIP 2 recipe demo through tools/train.py: every loss term and the switch in the log,
and --resume before and after the stage switch bit-identical to a straight run."""
import shutil

import pytest
import torch

from silc_seg.utils.demo_data import make_demo_data
from tests.test_pretrain.test_demo_pretrain import load_state, small_run_options, train

CONFIG = 'configs/silc/demo_siglip2_tiny.py'


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(str(root), num_train=16, num_val=4, image_size=96, seed=0, num_seg_train=0)
    return root


def run_text(log, work_dir):
    """Terminal output and the run's log file (the full log)."""
    return log.stdout + log.stderr + ''.join(p.read_text() for p in work_dir.glob('*/*.log'))


def options(demo_root, max_iters=6):
    # Switch at round(0.5 * 6) = 3: checkpoint 2 is before it, checkpoint 4 after it.
    return small_run_options(demo_root, max_iters, batch_size=4) + ['model.switch_ratio=0.5']


@pytest.mark.slow
def test_log_shows_every_loss_and_the_switch(demo_root, tmp_path):
    log = train(CONFIG, tmp_path, options(demo_root, max_iters=4))
    text = run_text(log, tmp_path)
    assert 'SigLIP 2 stage switch at iteration 2' in text
    for name in ('loss_contrastive', 'loss_caption', 'loss_aref', 'loss_gcap', 'loss_distill',
                 'loss_mask_distill', 'parallel_share'):
        assert name in text, name


@pytest.mark.slow
def test_resume_before_and_after_the_switch_is_bit_identical(demo_root, tmp_path):
    opts = options(demo_root)
    straight = tmp_path / 'straight'
    train(CONFIG, straight, opts)
    expected = load_state(straight / 'iter_6.pth')
    before, after = load_state(straight / 'iter_2.pth'), load_state(straight / 'iter_4.pth')
    assert not bool(before['self_distill_on']) and bool(after['self_distill_on'])
    assert bool(expected['self_distill_on'])
    # The teacher moved away from its initialisation only after the switch.
    assert any(not torch.equal(before[k], after[k]) for k in after
               if k.startswith('teacher_image_encoder.'))
    for start in ('iter_2.pth', 'iter_4.pth'):
        resumed = tmp_path / f'resumed_{start[:-4]}'
        resumed.mkdir()
        shutil.copy(straight / start, resumed / start)
        log = train(CONFIG, resumed, opts, '--resume', str(resumed / start))
        text = run_text(log, resumed)
        assert 'resumed' in text.lower()
        # The switch line appears once per run that crosses it: only after iter_2.
        assert ('SigLIP 2 stage switch' in text) == (start == 'iter_2.pth')
        actual = load_state(resumed / 'iter_6.pth')
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), (start, key)
