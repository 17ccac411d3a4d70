"""Crash-safe checkpoint files: atomic writes, cheap damage checks, resuming from the newest good.

MMEngine 0.10.7 writes a checkpoint in place (``open(path, 'wb')``): a run killed or out of disk
space mid-write leaves a truncated newest file, and ``--resume`` then stops with torch's zip
error. :class:`AtomicLocalBackend` (MMEngine file backend ``'atomic_local'``, used by
:class:`~silc_seg.engine.hooks.SafeCheckpointHook`) writes to a temporary file in the same
folder, flushes and fsyncs it, then renames it over the target, so a reader sees either the old
file or the complete new one. :func:`save_checkpoint_file` is the one writer of checkpoint files
(the hook's saves and :class:`~silc_seg.engine.SILCFSDPStrategy`'s go through it).
:func:`find_resumable_checkpoint` is what auto-resume reads.
"""
import errno
import logging
import os
import os.path as osp
import re
import shutil
import zipfile
from typing import List, Optional, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

# Exit code of a run that saved a checkpoint on a preemption signal and stopped: EX_TEMPFAIL of
# sysexits.h ("temporary failure, the user is invited to retry"); tools/slurm_train.sh requeues
# the job on it.
PREEMPTED_EXIT_CODE = 75

TEMP_MARKER = '.tmp-'  # '.iter_8.pth.tmp-<pid>': hidden, never matches a checkpoint name
_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')
_SHARD_NAME = re.compile(r'^rank(\d+)\.pth$')  # the shard files of a sharded (FSDP) checkpoint
_CHUNK = 64 << 20  # bytes per write() call


class CheckpointWriteError(OSError):
    """A checkpoint (or ``last_checkpoint``) could not be written; the old file is unchanged."""


class CheckpointDamagedError(RuntimeError):
    """The checkpoint to resume from is damaged (truncated, empty, not a torch.save archive)."""


def temp_path(path: str, pid: Optional[int] = None) -> str:
    """The temporary file :func:`atomic_write` writes ``path``'s bytes to before the rename."""
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{name}{TEMP_MARKER}{os.getpid() if pid is None else pid}')


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover (platforms without directory file descriptors)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: Union[bytes, memoryview]) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written.

    Writes a temporary file in the same folder (same file system), flushes and fsyncs it, renames
    it over ``path`` (atomic on POSIX) and fsyncs the folder, so that the rename survives a power
    loss too.

    Raises:
        CheckpointWriteError: the write failed (disk full, quota, permissions); the temporary file
            is removed and ``path`` is as it was. The message names the file, the bytes to write
            and the space left.
    """
    path = osp.abspath(path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temp = temp_path(path)
    view = memoryview(data)
    try:
        with open(temp, 'wb') as file:
            for start in range(0, len(view), _CHUNK):
                file.write(view[start:start + _CHUNK])
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as error:
        try:
            os.remove(temp)
        except OSError:
            pass
        if not isinstance(error, OSError):
            raise
        try:
            free = f'{shutil.disk_usage(folder).free} bytes free'
        except OSError:  # pragma: no cover
            free = 'free space unknown'
        reason = 'the disk is full' if error.errno in (errno.ENOSPC, errno.EDQUOT) else str(error)
        raise CheckpointWriteError(
            error.errno, f'Could not write {path}: {reason} ({len(view)} bytes to write, {free} '
            f'in {folder}). Nothing was replaced: the file that was there (if any) is intact.'
        ) from error
    _fsync_folder(folder)


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend, with :func:`atomic_write` for ``put`` and ``put_text``.

    Select it with ``backend_args=dict(backend='atomic_local')`` (SafeCheckpointHook does so for
    local folders).
    """

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), obj.encode(encoding))


def checkpoint_backend_args(path: str, backend_args: Optional[dict] = None) -> Optional[dict]:
    """The MMEngine ``backend_args`` checkpoints under ``path`` are written with: the
    ``'atomic_local'`` backend for a local path unless ``backend_args`` names one; remote paths
    (``s3://...``) keep ``backend_args`` (their backends write whole objects)."""
    if backend_args is None and '://' not in str(path):
        return dict(backend='atomic_local')
    return backend_args


def save_checkpoint_file(checkpoint: dict, path: str, backend_args: Optional[dict] = None) -> None:
    """``torch.save`` ``checkpoint`` to ``path`` through MMEngine's file backend for
    :func:`checkpoint_backend_args`: a local file is written by :func:`atomic_write`.

    Raises:
        CheckpointWriteError: a local write failed; ``path`` is as it was.
    """
    from mmengine.runner.checkpoint import save_checkpoint
    save_checkpoint(
        checkpoint, str(path), backend_args=checkpoint_backend_args(path, backend_args))


def checkpoint_damage(path: str) -> Optional[str]:
    """Why ``path`` cannot be a complete ``torch.save`` file, or None if it looks complete.

    Cheap: reads the zip central directory at the end of the file (torch.save's format since
    torch 1.6) and checks that every entry lies inside the file and that the pickle is there; it
    does not read the tensors. A truncated file has lost its central directory. A folder is a
    sharded checkpoint (``iter_N.pth/rank0.pth ...``, FSDP ``state_dict_cfg='local'``): complete
    when it holds ``rank0.pth`` to ``rankK.pth``, each complete.
    """
    if osp.isdir(path):
        ranks = sorted(int(m.group(1)) for m in map(_SHARD_NAME.match, os.listdir(path)) if m)
        if not ranks:
            return 'a folder without shard files (rank0.pth, rank1.pth, ...)'
        missing = sorted(set(range(ranks[-1] + 1)) - set(ranks))
        if missing:
            return f'a sharded checkpoint without {", ".join(f"rank{r}.pth" for r in missing)}'
        for rank in ranks:
            reason = checkpoint_damage(osp.join(path, f'rank{rank}.pth'))
            if reason is not None:
                return f'a sharded checkpoint whose rank{rank}.pth is {reason}'
        return None
    if not osp.isfile(path):
        return 'missing'
    size = osp.getsize(path)
    if size == 0:
        return 'empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        return (f'not a complete torch.save archive ({size} bytes; {error}): truncated by an '
                'interrupted write, or not a checkpoint')
    if not any(entry.filename.endswith('data.pkl') for entry in entries):
        return f'a zip archive without a data.pkl ({size} bytes): not a torch.save checkpoint'
    for entry in entries:
        if entry.header_offset + entry.compress_size > size:
            return f'truncated: the entry {entry.filename} ends past the end of the file'
    return None


def checkpoints_in(folder: str) -> List[str]:
    """The ``iter_N.pth`` / ``epoch_N.pth`` files in ``folder``, newest (modified last) first."""
    if not osp.isdir(folder):
        return []
    paths = [osp.join(folder, name) for name in os.listdir(folder) if _CHECKPOINT_NAME.match(name)]
    return sorted(
        paths,
        reverse=True,
        key=lambda p:
        (os.stat(p).st_mtime_ns, int(_CHECKPOINT_NAME.match(osp.basename(p)).group(1))))


def nothing_to_resume(work_dir: str) -> Optional[str]:
    """Why ``--resume`` (auto) has nothing to continue from in ``work_dir``, or None.

    MMEngine logs ``Auto resumed from the latest checkpoint None.`` and trains from scratch;
    a user who asked to resume has mistyped the work dir or expects a run that never saved.

    Returns:
        str or None: the message to stop with (the folder, what was looked for, what to do).
    """
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')) or checkpoints_in(work_dir):
        return None
    state = ('is empty' if osp.isdir(work_dir) and not os.listdir(work_dir) else
             'holds no checkpoint' if osp.isdir(work_dir) else 'does not exist')
    return (f'--resume: nothing to resume: the work dir {work_dir} {state} (no '
            'last_checkpoint, no iter_N.pth / epoch_N.pth). Check --work-dir (a mistyped '
            'path?), pass --resume PATH to continue from a given checkpoint, or leave out '
            '--resume to start a new run.')


def find_resumable_checkpoint(work_dir: str, strict: bool = False) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) should continue from.

    The file ``last_checkpoint`` names, when it is complete (:func:`checkpoint_damage`).
    Otherwise (damaged, missing, or ``last_checkpoint`` empty or absent while checkpoints exist)
    it warns which file is broken and why, and returns the newest good ``iter_N.pth`` /
    ``epoch_N.pth`` of that folder; with ``strict=True`` it raises instead.

    Returns:
        str or None: the path; None when the work dir holds no checkpoint (a fresh start).

    Raises:
        CheckpointDamagedError: ``strict`` and the latest is damaged, or no checkpoint is good.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as file:
            named = file.read().strip() or None
    if named is not None and '://' in named:
        return named  # a remote out_dir: MMEngine's loader reports what it finds there
    if named is not None:
        reason = checkpoint_damage(named)
        if reason is None:
            return named
        problem = f'{named} (named by {pointer}) is {reason}'
        folder = osp.dirname(named) if osp.isdir(osp.dirname(named)) else work_dir
    else:
        folder = work_dir
        if not checkpoints_in(folder):
            return None
        problem = f'{pointer} is {"empty" if osp.isfile(pointer) else "missing"}'
    if strict:
        raise CheckpointDamagedError(
            f'Cannot resume: {problem}. strict_resume is set, so the run stops instead of '
            'falling back to an older checkpoint; pass --resume PATH to choose one.')
    broken = []
    for path in checkpoints_in(folder):
        if path == named:
            continue
        reason = checkpoint_damage(path)
        if reason is None:
            print_log(
                f'Resume: {problem}. Resuming from the newest good checkpoint {path} '
                f'instead{"; also broken: " + "; ".join(broken) if broken else ""}.',
                logger='current',
                level=logging.WARNING)
            return path
        broken.append(f'{path} is {reason}')
    raise CheckpointDamagedError(
        f'Cannot resume: {problem}, and no other checkpoint in {folder} is complete'
        f'{" (" + "; ".join(broken) + ")" if broken else ""}.')
