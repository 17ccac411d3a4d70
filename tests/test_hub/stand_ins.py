"""Offline stand-ins of the weights publishers: a local HTTP server for release URLs, a
pre-filled huggingface_hub cache, and a tiny open_clip architecture registered everywhere a
public one is (open_clip's model and pretrained tables, silc-seg's tower configs)."""
import hashlib
import http.server
import json
import os
import os.path as osp
import threading

import open_clip
import torch

from silc_seg.converters import MODEL_CONFIGS

TINY = 'SILC-Test-Tiny'
TINY_MODEL_CFG = dict(
    embed_dim=24,
    vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=2, head_width=16),
    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=2))
TINY_HUB_REPO = 'silc-test/tiny-clip'

TOWERS_TEMPLATE = """_base_ = [{normalization!r}]
image_encoder = dict(type='SILCVisionTransformer',
                     arch=dict(width=32, depth=2, num_heads=2, patch_size=8),
                     img_size=32, output_dim=24, ln_pre=True, act={act!r})
text_encoder = dict(type='SILCTextTransformer', arch=dict(width=32, depth=2, num_heads=2),
                    context_length=16, output_dim=24, act={act!r})
tokenizer = dict(type='CLIPTokenizer', context_length=16)
model = dict(contrastive_loss=dict(type='ClipContrastiveLoss'))
"""


class StandInServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; ``truncate`` lists paths whose
    response stops halfway (the full length announced); ``hits`` counts requests."""

    def __init__(self):
        self.files, self.truncate, self.hits = {}, set(), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):
                server.hits.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, url: str, body: bytes) -> str:
        """Serve ``body`` where ``SILC_SEG_DOWNLOAD_BASE_URL`` puts ``url``; returns the path."""
        path = '/' + url.split('://', 1)[1]
        self.files[path] = body
        return path

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def fill_hf_cache(hub_cache: str, repo_id: str, files: dict, revision: str = 'a' * 40):
    """Write ``files`` (name -> bytes) as huggingface_hub's cache holds a downloaded
    repository: ``models--ORG--NAME/snapshots/<revision>/<name>`` and ``refs/main``."""
    folder = osp.join(hub_cache, 'models--' + repo_id.replace('/', '--'))
    snapshot = osp.join(folder, 'snapshots', revision)
    for name, body in files.items():
        path = osp.join(snapshot, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(body)
    os.makedirs(osp.join(folder, 'refs'), exist_ok=True)
    with open(osp.join(folder, 'refs', 'main'), 'w') as handle:
        handle.write(revision)


def tiny_clip(quick_gelu: bool, seed: int = 0):
    """A tiny open_clip CLIP with random weights (biases and norms perturbed)."""
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**TINY_MODEL_CFG, quick_gelu=quick_gelu).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() <= 1 and 'logit' not in name:
                param.add_(0.1 * torch.randn_like(param))
    return model


def state_dict_bytes(model, path: str) -> bytes:
    torch.save(model.state_dict(), path)
    with open(path, 'rb') as handle:
        return handle.read()


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def register_tiny_architecture(setitem, folder, pretrained: dict):
    """Register ``TINY`` (GELU) and ``TINY-quickgelu`` with open_clip (model configs and the
    pretrained table entries ``pretrained``) and with silc-seg (tower configs written to
    ``folder``). ``setitem(mapping, key, value)``: ``monkeypatch.setitem`` in a test."""
    from open_clip import factory
    from open_clip import pretrained as open_clip_pretrained

    from silc_seg.utils import get_config_path
    normalization = get_config_path('_base_/towers/clip_normalization.py')
    variants = ((TINY, 'gelu', False), (f'{TINY}-quickgelu', 'quick_gelu', True))
    for name, act, quick_gelu in variants:
        towers = osp.join(str(folder), f'{name}.py')
        with open(towers, 'w') as handle:
            handle.write(TOWERS_TEMPLATE.format(normalization=normalization, act=act))
        setitem(MODEL_CONFIGS, name, towers)
        cfg = dict(TINY_MODEL_CFG, **({'quick_gelu': True} if quick_gelu else {}))
        setitem(factory._MODEL_CONFIGS, name, cfg)
    setitem(open_clip_pretrained._PRETRAINED, TINY, pretrained)


def open_clip_config_json(quick_gelu: bool) -> bytes:
    model_cfg = dict(TINY_MODEL_CFG, **({'quick_gelu': True} if quick_gelu else {}))
    return json.dumps(dict(model_cfg=model_cfg, preprocess_cfg={})).encode()
