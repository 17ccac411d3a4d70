"""Crash-safe checkpoints: damaged newest file, kill -9 during a save, disk full
(SafeCheckpointHook, silc_seg/engine/checkpointing.py), through tools/train.py."""
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch

from silc_seg.engine.checkpointing import (CheckpointDamagedError, checkpoint_damage,
                                           find_resumable_checkpoint)
from silc_seg.utils.checkpoint import torch_load_weights_only
from tests.test_engine.fault_helpers import (ENV, REPO, assert_same_weights, run, train_cmd,
                                             write_toy_config)


def write(folder, name, **kwargs):
    return write_toy_config(folder, name, **kwargs)


def train(config, work_dir, *extra):
    return run(train_cmd(config, work_dir, *extra))


def truncate(path, keep=0.5):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:int(len(data) * keep)])


def test_checkpoint_damage_names_what_is_wrong(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(1000)}}, good)
    assert checkpoint_damage(str(good)) is None
    shutil.copy(good, tmp_path / 'cut.pth')
    truncate(tmp_path / 'cut.pth')
    assert 'not a complete torch.save archive' in checkpoint_damage(str(tmp_path / 'cut.pth'))
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_damage(str(tmp_path / 'empty.pth')) == 'empty (0 bytes)'
    (tmp_path / 'noise.pth').write_bytes(os.urandom(4096))
    assert 'not a complete' in checkpoint_damage(str(tmp_path / 'noise.pth'))
    with zipfile.ZipFile(tmp_path / 'other.pth', 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    assert 'without a data.pkl' in checkpoint_damage(str(tmp_path / 'other.pth'))
    assert checkpoint_damage(str(tmp_path / 'absent.pth')) == 'missing'


def test_checkpoint_damage_of_a_sharded_checkpoint_folder(tmp_path):
    """A sharded checkpoint (FSDP state_dict_cfg='local': iter_N.pth/rank0.pth ...) is complete
    when every rank's file from rank0 up is there and complete; the newest good one resumes."""
    folder = tmp_path / 'iter_4.pth'
    folder.mkdir()
    assert 'without shard files' in checkpoint_damage(str(folder))
    for rank in (0, 1, 2):
        torch.save({'state_dict': {'w': torch.ones(1000) * rank}}, folder / f'rank{rank}.pth')
    assert checkpoint_damage(str(folder)) is None
    (folder / 'rank1.pth').unlink()
    assert checkpoint_damage(str(folder)) == 'a sharded checkpoint without rank1.pth'
    torch.save({'state_dict': {}}, folder / 'rank1.pth')
    truncate(folder / 'rank2.pth')
    assert checkpoint_damage(str(folder)).startswith(
        'a sharded checkpoint whose rank2.pth is not a complete torch.save archive')
    older = tmp_path / 'iter_2.pth'
    shutil.copytree(folder, older)
    torch.save({'state_dict': {}}, older / 'rank2.pth')
    os.utime(older, (1e9, 1e9))
    (tmp_path / 'last_checkpoint').write_text(str(folder))
    assert find_resumable_checkpoint(str(tmp_path)) == str(older)


def test_find_resumable_checkpoint_skips_damaged_files(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) is None  # nothing saved yet: fresh start
    for age, step in enumerate([6, 4, 2]):
        path = tmp_path / f'iter_{step}.pth'
        torch.save({'meta': {'iter': step}}, path)
        os.utime(path, (1e9 - age, 1e9 - age))  # iter_6 newest
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text(str(tmp_path / 'iter_6.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_6.pth')

    truncate(tmp_path / 'iter_6.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'')
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    with pytest.raises(CheckpointDamagedError, match=r'iter_6\.pth .*not a complete'):
        find_resumable_checkpoint(str(tmp_path), strict=True)
    pointer.write_text('')  # killed while writing the pointer (MMEngine writes it in place)
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    pointer.unlink()
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    truncate(tmp_path / 'iter_2.pth')
    with pytest.raises(CheckpointDamagedError, match='no other checkpoint .* is complete'):
        find_resumable_checkpoint(str(tmp_path))


@pytest.mark.slow
def test_truncated_newest_checkpoint_resumes_from_newest_good(straight, tmp_path):
    """The newest file cut in half: --resume names it and continues from the one before, to the
    same weights as the straight run; strict_resume stops instead."""
    work = tmp_path / 'work'
    work.mkdir()
    for step in (4, 6):
        shutil.copy(straight / f'iter_{step}.pth', work / f'iter_{step}.pth')
        time.sleep(0.01)  # iter_6 modified last
    (work / 'last_checkpoint').write_text(str(work / 'iter_6.pth'))
    truncate(work / 'iter_6.pth')
    config = write(tmp_path, 'toy.py', checkpoint='max_keep_ckpts=-1')

    strict = train(config, work, '--resume', '--cfg-options',
                   'default_hooks.checkpoint.strict_resume=True')
    assert strict.returncode != 0
    assert 'iter_6.pth' in strict.stderr and 'strict_resume is set' in strict.stderr

    resumed = train(config, work, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'{work / "iter_6.pth"} (named by' in log and 'not a complete' in log
    assert f'newest good checkpoint {work / "iter_4.pth"}' in log
    assert_same_weights(work / 'iter_8.pth', straight / 'iter_8.pth')


@pytest.mark.slow
def test_kill_9_during_a_save_resumes_from_the_previous_checkpoint(straight, tmp_path):
    """kill -9 while iter_4.pth is being written (max_keep_ckpts=1, where MMEngine deletes the
    old file first): iter_2.pth and last_checkpoint are intact, --resume reaches the straight
    run's weights and removes the temporary file."""
    work = tmp_path / 'work'
    marker = tmp_path / 'saving'
    config = write(
        tmp_path,
        'toy.py',
        checkpoint='max_keep_ckpts=1',
        custom_hooks=f"dict(type='HangingSaveHook', name='iter_4.pth', "
        f"marker='{marker}')")
    child = subprocess.Popen(
        train_cmd(config, work),
        cwd=REPO,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not marker.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.stderr.read().decode()[-3000:]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    temp_name, size = marker.read_text().split()
    assert int(size) > 0 and Path(temp_name).exists()  # killed with the bytes written, unnamed
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_2.pth']
    assert checkpoint_damage(str(work / 'iter_2.pth')) is None
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')

    resumed = train(write(tmp_path, 'resume.py', checkpoint='max_keep_ckpts=1'), work, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'Removed {temp_name}' in resumed.stdout + resumed.stderr
    assert not Path(temp_name).exists()
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_8.pth']
    assert_same_weights(work / 'iter_8.pth', straight / 'iter_8.pth')


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root / CAP_SYS_ADMIN)."""
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs',
                              str(mount_point)],
                             capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr.strip()}')
    yield mount_point
    subprocess.run(['umount', str(mount_point)], check=True)


@pytest.mark.slow
def test_disk_full_during_a_save_stops_with_a_clear_error(small_disk, tmp_path):
    """Checkpoints on a small disk that fills up after iter_2: the save of iter_4 stops the run
    naming the file, the full disk and the last complete checkpoint; iter_2 stays intact and
    resumable, no temporary file is left."""
    config = write(
        tmp_path,
        'toy.py',
        checkpoint=f"max_keep_ckpts=1, out_dir='{small_disk}'",
        custom_hooks=f"dict(type='FillDiskHook', folder='{small_disk}', after_iter=2)")
    work = tmp_path / 'work'
    result = train(config, work)
    assert result.returncode != 0
    saved = small_disk / 'work'  # out_dir / basename(work_dir), as MMEngine places it
    assert 'CheckpointWriteError' in result.stderr, result.stderr[-3000:]
    assert f'Could not write {saved / "iter_4.pth"}: the disk is full' in result.stderr
    assert f'The last complete checkpoint is {saved / "iter_2.pth"}' in result.stderr
    assert sorted(os.listdir(saved)) == ['iter_2.pth']  # no iter_4, no temporary file
    assert checkpoint_damage(str(saved / 'iter_2.pth')) is None
    assert torch_load_weights_only(str(saved / 'iter_2.pth'))['meta']['iter'] == 2
    assert find_resumable_checkpoint(str(work)) == str(saved / 'iter_2.pth')
