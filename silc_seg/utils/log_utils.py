"""What our tools print: MMEngine's log file keeps every detail, the terminal a summary."""
import functools
import logging
import os.path as osp
import re
import warnings
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, List

from mmengine.logging import MMLogger

if TYPE_CHECKING:
    from mmengine.runner import Runner


@contextmanager
def mmengine_log_level(level: int) -> Iterator[None]:
    """Set the current MMEngine logger's level inside the block.

    E.g. ``BaseModule.init_weights`` logs one line per parameter when no log file is open (over
    a thousand lines for ViT-B/16 before a benchmark's result); tools outside the runner wrap it
    with ``mmengine_log_level(logging.WARNING)``.

    Args:
        level (int): A ``logging`` level.
    """
    logger = MMLogger.get_current_instance()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def quiet_library_warnings() -> None:
    """Silence the deprecation notices about third-party code a user cannot act on: MMEngine's
    ``is_installed`` imports and reloads ``pkg_resources`` whenever a config names an ``mmseg::``
    base (setuptools>=81 warns on both). Our tools call it where they start; importing silc_seg
    changes no warning filter."""
    warnings.filterwarnings(
        'ignore', message='pkg_resources is deprecated as an API', category=UserWarning)


# Records the terminal drops: MMEngine's notices that its own hooks use deprecated FileClient /
# HardDiskBackend (CheckpointHook.before_train), every run.
_DROPPED = ('"FileClient" will be deprecated', '"HardDiskBackend" is the alias of')
_PARAMWISE = 'paramwise_options -- '
# Records the terminal shows as one line: (what the message contains, the method writing it).
_SUMMARIZED = (('\nSystem environment:', '_environment_line'), ('Config:\n', '_config_line'),
               ('Hooks will be executed in the following order:', '_hooks_line'))


class ConsoleSummary(logging.Filter):
    """Filter of the runner logger's terminal handler: the environment report, the full config,
    the hook order and the per-parameter optimizer options become one line each; MMEngine's
    FileClient deprecation notices are dropped. The log file gets every record unchanged.

    Args:
        runner (Runner): the runner whose logger this is (for file names and the model size).
        handler (logging.Handler): the terminal handler the filter sits on.
    """

    def __init__(self, runner: 'Runner', handler: logging.Handler):
        super().__init__()
        self.runner = runner
        self.handler = handler
        self.paramwise: List[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, 'silc_summary', False):
            return True
        message = record.getMessage()
        if message.startswith(_PARAMWISE):
            self.paramwise.append(message[len(_PARAMWISE):])
            return False
        if self.paramwise:
            self._emit(record, self._paramwise_line())
            self.paramwise = []
        if message.startswith(_DROPPED):
            return False
        for marker, summarize in _SUMMARIZED:
            if marker in message[:100]:
                self._emit(record, getattr(self, summarize)(message))
                return False
        return True

    def _emit(self, record: logging.LogRecord, text: str) -> None:
        self.handler.handle(
            logging.makeLogRecord(dict(record.__dict__, msg=text, args=None, silc_summary=True)))

    def log_file(self) -> str:
        return osp.join(self.runner.log_dir, f'{self.runner.timestamp}.log')

    def _environment_line(self, message: str) -> str:
        fields = dict(re.findall(r'^\s+([^:\n]+): (.*)$', message, flags=re.M))
        keys = ('Python', 'PyTorch', 'CUDA available', 'seed', 'Distributed launcher',
                'GPU number')
        if 'Python' in fields:
            fields['Python'] = fields['Python'].split()[0]
        return 'environment: ' + ', '.join(f'{key} {fields[key]}' for key in keys if key in fields)

    def _config_line(self, message: str) -> str:
        cfg = self.runner.cfg
        dump = osp.join(self.runner.work_dir, osp.basename(cfg.filename or 'config.py'))
        data = []
        for split in ('train', 'val', 'test'):
            loader = cfg.get(f'{split}_dataloader') or {}
            dataset = loader.get('dataset') or {}
            if dataset:
                root = f' {dataset["data_root"]}' if dataset.get('data_root') else ''
                data.append(f'{split} {dataset.get("type", "?")}{root} '
                            f'(batch {loader.get("batch_size", "?")})')
        return (f'config: {cfg.filename}; work dir: {self.runner.work_dir}\n'
                f'full config in the log file {self.log_file()} and the dump {dump}\n'
                f'data: {"; ".join(data) or "none"}')

    def _hooks_line(self, message: str) -> str:
        model = self.runner.model
        model = getattr(model, 'module', model)
        params = list(model.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        hooks = len(self.runner.hooks)
        return (f'model: {type(model).__name__}, {total / 1e6:.2f} M parameters '
                f'({trainable / 1e6:.2f} M trainable); {hooks} hooks (order in the log file)')

    def _paramwise_line(self) -> str:
        names = {entry.split(':', 1)[0] for entry in self.paramwise}
        options = Counter(entry.split(':', 1)[1] for entry in self.paramwise if ':' in entry)
        common = ', '.join(f'{option} x{count}' for option, count in options.most_common(4))
        more = f', {len(options) - 4} more' if len(options) > 4 else ''
        return (f'parameter groups: options set on {len(names)} parameters ({common}{more}); '
                'each listed in the log file')


def _is_terminal_handler(handler: logging.Handler) -> bool:
    is_stream = isinstance(handler, logging.StreamHandler)
    return is_stream and not isinstance(handler, logging.FileHandler)


@contextmanager
def runner_console_summary() -> Iterator[None]:
    """Runners built inside the block get :class:`ConsoleSummary` on their logger's terminal
    handler (it stays for the runner's life); their log file is unchanged. For
    ``tools/train.py`` and ``tools/test.py``, around the runner's construction."""
    from mmengine.runner import Runner
    build_logger = Runner.build_logger

    @functools.wraps(build_logger)
    def summarizing_build_logger(runner, *args, **kwargs):
        logger = build_logger(runner, *args, **kwargs)
        for handler in logger.handlers:
            if _is_terminal_handler(handler) and not any(
                    isinstance(f, ConsoleSummary) for f in handler.filters):
                handler.addFilter(ConsoleSummary(runner, handler))
        return logger

    Runner.build_logger = summarizing_build_logger
    try:
        yield
    finally:
        Runner.build_logger = build_logger
