import pytest
import torch


@pytest.fixture
def single_thread():
    """The tiny models' ops are far too small to gain from threads; on a shared CPU they lose."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
