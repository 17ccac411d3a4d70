"""Thread defaults of the main process beside the dataloader workers (silc_seg.utils.threads)."""
import pytest
import torch

from silc_seg.utils.threads import configure_threads, default_num_threads


@pytest.mark.parametrize(
    'cores,workers,ranks,expected',
    [
        (2, 1, 1, 1),  # the demo on the 2-core VM: 1 + 1 worker fill both cores
        (2, 0, 1, 2),  # no workers: the main process takes the cores
        (16, 3, 1, 4),
        (96, 8, 8, 1),  # 8 ranks x 8 workers on 96 cores: 12 per rank, 8 to the workers
        (96, 2, 8, 4),
        (1, 4, 1, 1),  # never below one
    ])
def test_default_num_threads(cores, workers, ranks, expected):
    assert default_num_threads(workers, cores=cores, local_world_size=ranks) == expected


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_configure_threads_sources(monkeypatch, restore_threads):
    import silc_seg.utils.threads as threads
    monkeypatch.setattr(threads, 'available_cores', lambda: 2)
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    cfg = dict(train_dataloader=dict(num_workers=1), test_dataloader=dict(num_workers=0))
    assert configure_threads(cfg)[0] == 1 and torch.get_num_threads() == 1
    assert configure_threads(cfg, 'test_dataloader')[0] == 2 and torch.get_num_threads() == 2
    # The config wins; an OMP_NUM_THREADS the user set is kept under 'auto'.
    cfg['env_cfg'] = dict(num_threads=1)
    assert configure_threads(cfg) == (1, 'env_cfg.num_threads')
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    torch.set_num_threads(2)
    assert configure_threads(dict(cfg, env_cfg=dict(num_threads='auto'))) == (2, 'OMP_NUM_THREADS')
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match='positive int'):
        configure_threads(dict(env_cfg=dict(num_threads=0)))
