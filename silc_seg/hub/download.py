"""Downloads of public weights and tokenizer files, through their owners' code and caches.

* OpenAI / OpenCLIP release URLs: open_clip's ``download_pretrained_from_url`` (cache
  ``~/.cache/clip``; it checks the SHA-256 that OpenAI puts in the URL path and the prefix that
  OpenCLIP puts in its file names).
* Hugging Face Hub files: ``huggingface_hub.hf_hub_download`` (its cache, ``HF_HOME``,
  ``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` honoured).
* Other URLs (big_vision's bucket, T5 vocabularies): a streamed download into
  ``$SILC_SEG_CACHE/downloads`` that is refused unless it has the announced length, written to a
  ``.part`` file and renamed when complete (an interrupted download never looks finished).

``SILC_SEG_DOWNLOAD_BASE_URL`` (a mirror, or a local stand-in in the tests) rewrites every URL
download ``https://HOST/PATH`` to ``$SILC_SEG_DOWNLOAD_BASE_URL/HOST/PATH``.
"""
import hashlib
import os
import os.path as osp
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urlsplit

BASE_URL_ENV = 'SILC_SEG_DOWNLOAD_BASE_URL'
CACHE_ENV = 'SILC_SEG_CACHE'


class PretrainedUnavailableError(RuntimeError):
    """A named checkpoint (or a file it needs) cannot be obtained: unknown name, offline, or a
    download refused (checksum mismatch, truncated)."""


def silc_cache_dir(*parts: str) -> str:
    """``$SILC_SEG_CACHE`` (default ``$XDG_CACHE_HOME/silc-seg``, i.e. ``~/.cache/silc-seg``)
    joined with ``parts``."""
    root = os.environ.get(CACHE_ENV) or osp.join(
        os.environ.get('XDG_CACHE_HOME') or osp.expanduser('~/.cache'), 'silc-seg')
    return osp.join(osp.expanduser(root), *parts)


def rewrite_url(url: str) -> str:
    """``url`` under ``$SILC_SEG_DOWNLOAD_BASE_URL`` (host kept as the first path part)."""
    base = os.environ.get(BASE_URL_ENV)
    if not base:
        return url
    parts = urlsplit(url)
    return f'{base.rstrip("/")}/{parts.netloc}{parts.path}'


def open_clip_checksum(url: str) -> str:
    """The SHA-256 (or its prefix) the publisher puts in an OpenAI / OpenCLIP release URL, as
    open_clip's ``download_pretrained_from_url`` reads it; '' when the URL has none."""
    filename = osp.basename(url)
    if 'openaipublic' in url:
        return url.split('/')[-2]
    if 'mlfoundations' in url:
        return osp.splitext(filename)[0].split('-')[-1]
    return ''


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def _refused(what: str, url: str, target: str, converter: str, reason: str):
    return PretrainedUnavailableError(
        f'Could not get {what}: {reason}.\n  URL: {url}\n  cache path: {target}\n'
        f'Download it there yourself (or set {BASE_URL_ENV} to a mirror), or convert a local '
        f'copy with:\n  {converter}')


def download_open_clip_url(url: str, converter: str) -> str:
    """An OpenAI / OpenCLIP release file via open_clip's downloader (checksum checked).

    Args:
        url (str): the URL of open_clip's pretrained table.
        converter (str): the manual conversion command the error names.

    Returns:
        str: the cached file.
    """
    from open_clip.pretrained import download_pretrained_from_url
    source = rewrite_url(url)
    cache_dir = osp.expanduser('~/.cache/clip')  # open_clip's default
    target = osp.join(cache_dir, osp.basename(url))
    try:
        return download_pretrained_from_url(source, cache_dir=cache_dir)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise _refused('the weights', source, target, converter,
                       f'download failed ({error})') from None
    except RuntimeError as error:
        if 'SHA256' not in str(error):
            raise
        size = osp.getsize(target) if osp.isfile(target) else 0
        actual = file_sha256(target) if size else ''
        if osp.isfile(target):
            os.remove(target)
        raise _refused(
            'the weights', source, target, converter,
            f'the downloaded file ({size} bytes, sha256 {actual}) does not have the publisher\'s '
            f'checksum {open_clip_checksum(url)}: it is truncated or corrupt and was deleted; '
            'run again to download it again') from None


def download_url(url: str, what: str, converter: str, sha256: Optional[str] = None) -> str:
    """A file by URL into ``$SILC_SEG_CACHE/downloads/HOST/PATH``, kept only if complete.

    Args:
        url (str): the file's URL (rewritten by ``SILC_SEG_DOWNLOAD_BASE_URL``).
        what (str): what the file is, for messages.
        converter (str): the manual command the error names.
        sha256 (str, optional): expected SHA-256 (or prefix), when the publisher gives one.

    Returns:
        str: the cached file.
    """
    parts = urlsplit(url)
    target = silc_cache_dir('downloads', parts.netloc, parts.path.lstrip('/'))
    if osp.isfile(target) and (not sha256 or file_sha256(target).startswith(sha256)):
        return target
    source = rewrite_url(url)
    os.makedirs(osp.dirname(target), exist_ok=True)
    partial = f'{target}.part'
    try:
        with urllib.request.urlopen(source) as response, open(partial, 'wb') as output:
            expected = response.headers.get('Content-Length')
            received = 0
            for block in iter(lambda: response.read(1 << 20), b''):
                output.write(block)
                received += len(block)
    except (urllib.error.URLError, OSError, ValueError) as error:
        if osp.isfile(partial):
            os.remove(partial)
        raise _refused(what, source, target, converter, f'download failed ({error})') from None
    problem = ''
    if expected is not None and received != int(expected):
        problem = (f'the download is truncated: {received} of the {expected} bytes the server '
                   'announced arrived')
    elif sha256 and not file_sha256(partial).startswith(sha256):
        problem = (f'the downloaded file has sha256 {file_sha256(partial)}, not the '
                   f'publisher\'s {sha256}')
    if problem:
        os.remove(partial)
        raise _refused(what, source, target, converter, problem + '; nothing was kept')
    os.replace(partial, target)
    return target


def hf_repo_cache_path(repo_id: str) -> str:
    """The folder of a model repository in the huggingface_hub cache."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name
    return osp.join(constants.HF_HUB_CACHE, repo_folder_name(repo_id=repo_id, repo_type='model'))


def download_hf_file(repo_id: str,
                     filename: str,
                     what: str,
                     converter: str,
                     revision: Optional[str] = None) -> str:
    """One file of a Hugging Face Hub model repository via ``hf_hub_download``.

    Returns:
        str: the cached file.
    """
    from huggingface_hub import hf_hub_download, hf_hub_url
    try:
        return hf_hub_download(repo_id, filename, revision=revision, library_name='silc-seg')
    except Exception as error:  # offline, missing repo / file, HTTP errors
        raise _refused(what, hf_hub_url(repo_id, filename, revision=revision),
                       hf_repo_cache_path(repo_id), converter,
                       f'{type(error).__name__}: {str(error).splitlines()[0]}') from None


def download_hf_weights(repo_id: str,
                        filename: Optional[str],
                        converter: str,
                        revision: Optional[str] = None) -> str:
    """The open_clip weights of a hub repository: open_clip's choice of file (its
    ``.safetensors`` twin first, then ``open_clip_pytorch_model.bin``) via its downloader.

    Returns:
        str: the cached file.
    """
    from huggingface_hub import hf_hub_url
    from open_clip.pretrained import download_pretrained_from_hf
    try:
        return download_pretrained_from_hf(repo_id, filename=filename, revision=revision)
    except FileNotFoundError as error:
        url = hf_hub_url(repo_id, filename or 'open_clip_model.safetensors', revision=revision)
        raise _refused('the weights', url, hf_repo_cache_path(repo_id), converter,
                       str(error).splitlines()[0]) from None
