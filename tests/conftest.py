"""Suite-wide settings.

The tests use tiny models, for which torch's intra-op threads cost more in hand-off than they
save; on a busy 2-core machine two threads made them about ten times slower. One thread also
makes the float results independent of the machine's core count.
"""

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def restore_umask():
    """Tests that set the process umask (os.umask) get the previous one back afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)
