"""Run a user's checkout of an official zero-shot segmentation repository through mmseg's test
loop and save what it predicts, for ``compare_with_reference.py`` (which starts this script).

    PYTHONPATH=REF_COPY python reference_runner.py METHOD CONFIG WEIGHTS OUT \
        [--device cpu] [--num-templates N] [--stages] [--stage-stride S] [--cfg-options k=v ...]

It runs in its own process, in the reference's (patched copy of the) checkout: it imports the
reference's modules and never silc_seg, whose registrations would collide with the references'
dataset names. ``compare_with_reference.py`` imports it only for the tables and the saving
helpers, which need numpy, torch and mmengine alone.

Written under OUT: ``labels/<image>.npy`` (predicted label map at the original size),
``stages/<image>.npz`` and ``stages/text.npy`` (with ``--stages``, see :func:`save_stages`) and
``meta.json`` (the run-time patches that were applied).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import types
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.hooks import Hook

# The official repositories: the segmentor module their eval.py imports, how the CLIP weights
# are loaded ('clip': clip.load(path), which takes a plain state dict or a TorchScript archive;
# 'open_clip': ClearCLIP's create_model(..., pretrained='openai'), redirected to the file), and
# the files a checkout must have.
REFERENCES = {
    'sclip':
    dict(repo='wangf3014/SCLIP', module='clip_segmentor', loader='clip'),
    'naclip':
    dict(repo='sinahmr/NACLIP', module='naclip', loader='clip'),
    'clearclip':
    dict(repo='mc-lan/ClearCLIP', module='clearclip_segmentor', loader='open_clip'),
    'scclip':
    dict(repo='SuleBai/SC-CLIP', module='scclip_segmentor', loader='clip'),
    'resclip':
    dict(repo='yvhangyang/ResCLIP', module='resclip_segmentor', loader='clip'),
    'proxyclip':
    dict(
        repo='mc-lan/ProxyCLIP',
        module='proxyclip_segmentor',
        loader='open_clip',
        vfm_hub='dino_vitb8',
        pad_multiple=56),
    # CASS also loads a VFM (DINO ViT-B/8, from the file REFERENCE_VFM_WEIGHTS names, below) and,
    # as its eval.py, takes the dataset name from the config path and runs with --pamr off; its
    # spectral head assignment needs random heads with distinct spectra (compare_with_reference).
    'cass':
    dict(
        repo='MICV-yonsei/CASS',
        module='cass_segmentor',
        loader='clip',
        vfm_file='dino',
        distinct_head_spectra=True),
}
# Modules imported at module level that the CLIP (+ DINO) path never uses, replaced by empty
# modules (with these attributes set to None) when they cannot be imported.
UNUSED_IMPORTS = {
    'clearclip': {
        'BLIP.models.blip_retrieval': ('blip_retrieval', ),
        'gem': ('create_gem_model', )
    },
    'proxyclip': {
        'openpyxl': ()
    },
}
# The files a facebookresearch/dino checkout needs for the proxy VFM (``--vfm-dir``).
VFM_FILES = ('hubconf.py', 'vision_transformer.py', 'utils.py')
# Our dataset names -> the references' config files (configs/cfg_*.py, the same in all six).
REFERENCE_CONFIGS = {
    'ade150': 'cfg_ade20k.py',
    'voc21': 'cfg_voc21.py',
    'voc20': 'cfg_voc20.py',
    'pc59': 'cfg_context59.py',
    'pc60': 'cfg_context60.py',
    'cityscapes': 'cfg_city_scapes.py',
    'coco-stuff171': 'cfg_coco_stuff164k.py',
    'coco-object': 'cfg_coco_object.py',
}
# Source patches applied to the temporary copy on CPU only (file, old text, new text, why):
# ClearCLIP and ProxyCLIP cast the inputs (ProxyCLIP: and its VFM) to fp16 (their CLIP towers
# are loaded in fp32 on CPU, see _redirect_open_clip), which would make an fp32 comparison
# meaningless; ResCLIP moves its SFR tensors and PAMR to CUDA unconditionally.
_NO_CUDA = 'CPU run: the reference moves this to CUDA unconditionally'
CPU_PATCHES = {
    'clearclip':
    [('clearclip_segmentor.py', 'inputs = inputs.half()', 'inputs = inputs.to(self.dtype)',
      'fp32 on CPU: the reference casts the inputs to fp16')],
    'resclip': [
        ('clip/model.py', 'seg_logit_temp = seg_logit_temp.cuda()',
         'seg_logit_temp = seg_logit_temp', _NO_CUDA),
        ('clip/model.py', 'patch_logit_temp = patch_logit_temp.cuda()',
         'patch_logit_temp = patch_logit_temp', _NO_CUDA),
        ('clip/model.py', "PAMR(10, dilations=(8, 16)).to(torch.device('cuda'))",
         "PAMR(10, dilations=(8, 16)).to(torch.device('cpu'))", _NO_CUDA),
    ],
    'proxyclip': [
        ('proxyclip_segmentor.py', 'self.vfm = self.vfm.half()', 'self.vfm = self.vfm.float()',
         'fp32 on CPU: the reference casts the VFM to fp16'),
        ('proxyclip_segmentor.py', 'imgs_norm = imgs_norm.half()', 'imgs_norm = imgs_norm.float()',
         'fp32 on CPU: the reference casts the VFM input'),
        ('proxyclip_segmentor.py', 'self.clip.encode_image(img.half(),',
         'self.clip.encode_image(img.to(self.dtype),',
         'fp32 on CPU: the reference casts the CLIP input to fp16'),
    ],
}
# Patches applied on every device: CASS's DINO is built without a weights file (it downloads
# them); the copy reads the VFM file named by the environment variable REFERENCE_VFM_WEIGHTS.
ALWAYS_PATCHES = {
    'cass': [('cass_segmentor.py',
              "DinoSelfAttention(arch='vit_base', patch_size=8, image_size=(224, 224))",
              "DinoSelfAttention(arch='vit_base', patch_size=8, image_size=(224, 224), "
              "pretrained_weights=__import__('os').environ['REFERENCE_VFM_WEIGHTS'])",
              'the DINO ViT-B/8 weights come from REFERENCE_VFM_WEIGHTS, not a download')],
}
CPU_PATCHES['cass'] = [('cass_segmentor.py', ".to('cuda')", '.to(next(net.parameters()).device)',
                        'CPU run: the reference moves the prompt tokens to CUDA unconditionally')]
COPY_IGNORE = shutil.ignore_patterns('.git', '*.png', '*.jpg', '*.gif', '*.pdf', '*.doc',
                                     '__pycache__', 'work_logs', 'show_dir')


def log(message: str) -> None:
    print(f'[reference] {message}', flush=True)


def reference_files(method: str, dataset: str) -> List[str]:
    """Files (relative to the checkout) the run of ``method`` on ``dataset`` needs."""
    spec = REFERENCES[method]
    return [
        spec['module'] + '.py', 'custom_datasets.py',
        osp.join('configs', REFERENCE_CONFIGS[dataset])
    ]


def git_commit(path: str) -> Optional[str]:
    """The checked-out commit of ``path``, or None when it is not a git checkout."""
    try:
        out = subprocess.run(['git', '-C', path, 'rev-parse', 'HEAD'],
                             capture_output=True,
                             text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def copy_and_patch(reference_dir: str, dst: str, method: str, device: str) -> List[str]:
    """Copy the checkout to ``dst`` (the user's checkout stays untouched) and apply the
    run-time patches for ``device``; returns one line per patch (also printed)."""
    if osp.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(reference_dir, dst, ignore=COPY_IGNORE)
    lines = []
    patches = ALWAYS_PATCHES.get(method, []) + (
        CPU_PATCHES.get(method, []) if device == 'cpu' else [])
    for name, old, new, why in patches:
        path = osp.join(dst, name)
        with open(path) as f:
            text = f.read()
        if text.count(old) != 1:
            raise RuntimeError(f'cannot patch {name}: {old!r} occurs {text.count(old)} times '
                               '(a different version of the reference?)')
        with open(path, 'w') as f:
            f.write(text.replace(old, new))
        lines.append(f'patched {name}: {old!r} -> {new!r} ({why})')
        log(lines[-1])
    return lines


def subsample(tensor: torch.Tensor, stride: int) -> np.ndarray:
    """Every ``stride``-th pixel of the last two dimensions, as float32 numpy."""
    return tensor[..., ::stride, ::stride].detach().float().cpu().numpy()


def save_stages(path: str, image: torch.Tensor, boxes: Sequence[Sequence[int]],
                windows: Sequence[torch.Tensor], merged: torch.Tensor, final: torch.Tensor,
                stride: int) -> None:
    """One image's intermediate stages, the same on both sides of the comparison.

    Args:
        path (str): the ``.npz`` file.
        image (Tensor): (3, H, W) the normalized input of the segmentor.
        boxes (list): ``(y1, y2, x1, x2)`` of every window in the input, in any order.
        windows (list[Tensor]): (Q, h, w) cosine logits of each window at its pixel size.
        merged (Tensor): (Q, H, W) window logits averaged where they overlap.
        final (Tensor): (Q, H0, W0) logits at the original size (after PAMR, if any), before
            the logit scale and the softmax.
        stride (int): logits are kept at every ``stride``-th pixel.
    """
    arrays = dict(
        input=image.detach().float().cpu().numpy(),
        boxes=np.asarray(boxes, np.int64).reshape(-1, 4),
        merged=subsample(merged, stride),
        final=subsample(final, stride))
    for index, logits in enumerate(windows):
        arrays[f'window_{index}'] = subsample(logits, stride)
    np.savez(path, **arrays)


def merge_windows(shape: Sequence[int], boxes: Sequence[Sequence[int]],
                  windows: Sequence[torch.Tensor]) -> torch.Tensor:
    """(Q, H, W) window logits summed into the image and divided by the cover count."""
    total = windows[0].new_zeros((windows[0].shape[0], ) + tuple(shape))
    count = windows[0].new_zeros((1, ) + tuple(shape))
    for (y1, y2, x1, x2), logits in zip(boxes, windows):
        total[:, y1:y2, x1:x2] += logits
        count[:, y1:y2, x1:x2] += 1
    if (count == 0).any():
        raise RuntimeError('the windows do not cover the image')
    return total / count


class LabelSaverHook(Hook):
    """Saves every test prediction as ``<out>/labels/<image name>.npy`` (int16, original
    size), keyed by the image file name without extension."""

    def __init__(self, out: str):
        self.out = osp.join(out, 'labels')
        os.makedirs(self.out, exist_ok=True)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for sample in outputs:
            name = osp.splitext(osp.basename(sample.img_path))[0]
            labels = sample.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.int16)
            np.save(osp.join(self.out, name + '.npy'), labels)


# ------------------------------------------------------------------ inside the reference only
def _stub_unused_imports(method: str) -> List[str]:
    """Modules of :data:`UNUSED_IMPORTS` (ClearCLIP: BLIP and GEM; ProxyCLIP: ``openpyxl``, for
    its result spreadsheet) that cannot be imported are replaced by empty modules (logged)."""
    lines = []
    for name, attributes in UNUSED_IMPORTS.get(method, {}).items():
        try:
            __import__(name)
        except Exception as err:  # noqa: BLE001 (any import-time failure of an unused module)
            module = types.ModuleType(name)
            for attribute in attributes:
                setattr(module, attribute, None)
            sys.modules[name] = module
            lines.append(f'stubbed the unused module {name} ({type(err).__name__}: {err})')
            log(lines[-1])
    return lines


def _stand_in_missing_modules() -> List[str]:
    """CASS imports ``requests`` (unused) and sklearn's ``cosine_distances``; when they cannot
    be imported, an empty module and a numpy ``cosine_distances`` (float64, 1 - cosine clipped
    to [0, 2], zero diagonal, as sklearn's) stand in (logged)."""
    import importlib.machinery

    def stand_in(name):  # with a spec: torch._dynamo looks modules up with find_spec
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules[name] = module
        return module

    lines = []
    try:
        __import__('requests')
    except ImportError as err:
        stand_in('requests')
        lines.append(f'stubbed the unused module requests ({err})')
        log(lines[-1])
    try:
        __import__('sklearn.metrics.pairwise')
    except ImportError as err:

        def cosine_distances(x, y=None):
            x = np.asarray(x, dtype=np.float64)
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            out = np.clip(1 - x @ x.T, 0, 2)
            np.fill_diagonal(out, 0.0)
            return out

        for name in ('sklearn', 'sklearn.metrics', 'sklearn.metrics.pairwise'):
            stand_in(name)
        sys.modules['sklearn.metrics.pairwise'].cosine_distances = cosine_distances
        lines.append(f'sklearn.metrics.pairwise.cosine_distances: a numpy stand-in ({err})')
        log(lines[-1])
    return lines


def truncate_templates(num_templates: int) -> str:
    """Cut the imported reference's ``openai_imagenet_template`` to its first ``num_templates``
    (``--num-templates``, on both sides); returns the logged line."""
    import prompts.imagenet_template as templates
    del templates.openai_imagenet_template[num_templates:]
    line = (f'prompts.imagenet_template.openai_imagenet_template cut to its first '
            f'{num_templates} templates (--num-templates)')
    log(line)
    return line


def _redirect_open_clip(module, weights: str, device: str) -> str:
    """ClearCLIP: ``create_model('ViT-B/16', pretrained='openai', precision=...)`` loads
    ``weights`` through the repository's own OpenAI loader instead of downloading."""
    from open_clip.openai import load_openai_model

    def create_model(name, pretrained=None, precision='fp32', **kwargs):
        if pretrained != 'openai':
            raise RuntimeError(f'only the OpenAI weights can be redirected, got {pretrained!r}')
        precision = 'fp32' if device == 'cpu' else precision
        return load_openai_model(weights, precision=precision, device=device)

    module.create_model = create_model
    line = (f'{module.__name__}.create_model(..., pretrained="openai") loads {weights} with the '
            f'repository\'s open_clip.openai.load_openai_model' +
            (' in fp32 (CPU)' if device == 'cpu' else ''))
    log(line)
    return line


def _redirect_dino_hub(vfm_dir: str, weights: str, model: str) -> str:
    """ProxyCLIP: ``torch.hub.load('facebookresearch/dino:main', model)`` builds the model with
    the ``vision_transformer.py`` of the checkout ``vfm_dir`` instead of downloading, and loads
    ``weights`` (the official key layout) strictly. ``hubconf.<model>(pretrained=False)`` when
    the weights are ViT-B/8's size; otherwise ``VisionTransformer`` with the arguments
    ``vit_base`` passes, at the width and depth of the weights (64 channels per head)."""
    from functools import partial

    import torch.nn as nn
    sys.path.insert(0, vfm_dir)
    import hubconf
    import vision_transformer
    sys.path.remove(vfm_dir)
    state_dict = torch.load(weights, map_location='cpu')
    width = state_dict['cls_token'].shape[-1]
    depth = len({key.split('.')[1] for key in state_dict if key.startswith('blocks.')})
    patch = state_dict['patch_embed.proj.weight'].shape[-1]
    full = (width, depth, patch) == (768, 12, 8)
    hub_load = torch.hub.load

    def load(repo, name, *args, **kwargs):
        if not repo.startswith('facebookresearch/dino:') or name != model:
            return hub_load(repo, name, *args, **kwargs)
        if full:
            vfm = getattr(hubconf, model)(pretrained=False)
        else:
            vfm = vision_transformer.VisionTransformer(
                patch_size=patch,
                embed_dim=width,
                depth=depth,
                num_heads=width // 64,
                mlp_ratio=4,
                qkv_bias=True,
                norm_layer=partial(nn.LayerNorm, eps=1e-6),
                num_classes=0)
        vfm.load_state_dict(state_dict, strict=True)
        return vfm

    torch.hub.load = load
    built = f'hubconf.{model}(pretrained=False)' if full else (
        f'vision_transformer.VisionTransformer(patch_size={patch}, embed_dim={width}, '
        f'depth={depth}, num_heads={width // 64}, vit_base\'s other arguments)')
    line = (f"torch.hub.load('facebookresearch/dino:main', '{model}') builds {built} from "
            f'{vfm_dir} and loads {weights} (strict)')
    log(line)
    return line


def _window_boxes(segmentor, height: int, width: int) -> List[tuple]:
    """Windows of the reference's forward_slide loop (``slide_crop`` / ``slide_stride``), or the
    whole image when ``slide_crop`` is 0."""
    crop, stride = int(segmentor.slide_crop), int(segmentor.slide_stride)
    if crop <= 0:
        return [(0, height, 0, width)]
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    boxes = []
    for row in range(rows):
        for col in range(cols):
            y2, x2 = min(row * stride + crop, height), min(col * stride + crop, width)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return boxes


def _locate(segmentor,
            image: torch.Tensor,
            crop: torch.Tensor,
            boxes: Sequence[tuple],
            pad_multiple: Optional[int] = None):
    """The box of ``image`` that ``crop`` shows (unpadded with the reference's own
    ``compute_padsize`` to whole patches, or to ``pad_multiple`` pixels, where it pads), with the
    (top, left) offset of the content."""
    patch = pad_multiple or getattr(segmentor, 'patch_size',
                                    None) or segmentor.net.visual.patch_size
    patch = patch[0] if isinstance(patch, (tuple, list)) else patch
    for box in boxes:
        y1, y2, x1, x2 = box
        h, w = y2 - y1, x2 - x1
        left, right, top, bottom = (
            segmentor.compute_padsize(h, w, patch) if hasattr(segmentor, 'compute_padsize')
            and crop.shape[-2:] != (h, w) else (0, 0, 0, 0))
        if tuple(crop.shape[-2:]) != (h + top + bottom, w + left + right):
            continue
        content = crop[..., top:top + h, left:left + w]
        if torch.equal(content, image[..., y1:y2, x1:x2].to(content.dtype)):
            return box, (top, left)
    return None, None


def install_stage_recorders(segmentor,
                            out: str,
                            stride: int,
                            pad_multiple: Optional[int] = None) -> None:
    """Wrap the reference's ``predict``, ``forward_feature`` and ``postprocess_result`` (all
    six repositories have them) to record each image's stages; text embeddings are its
    ``query_features``; ``pad_multiple``: see :func:`_locate`."""
    os.makedirs(osp.join(out, 'stages'), exist_ok=True)
    np.save(
        osp.join(out, 'stages', 'text.npy'),
        segmentor.query_features.detach().float().cpu().numpy())
    record: Dict[str, list] = {}
    forward_feature, postprocess = segmentor.forward_feature, segmentor.postprocess_result
    predict = segmentor.predict

    def recorded_forward_feature(img, *args, **kwargs):
        logits = forward_feature(img, *args, **kwargs)
        record['calls'].append((img[0] if isinstance(img, list) else img, logits))
        return logits

    def recorded_postprocess(seg_logits, data_samples):
        record['final'] = seg_logits[0].detach().clone()
        return postprocess(seg_logits, data_samples)

    def recorded_predict(inputs, data_samples):
        record.clear()
        record['calls'] = []
        results = predict(inputs, data_samples)
        image = inputs[0]
        candidates = _window_boxes(segmentor, *image.shape[-2:])
        boxes, windows = [], []
        for crop, logits in record['calls']:
            box, (top, left) = _locate(segmentor, image, crop[0], candidates, pad_multiple)
            if box is None:
                raise RuntimeError(f'a {tuple(crop.shape)} window of the reference matches no '
                                   f'window of the {tuple(image.shape)} input')
            y1, y2, x1, x2 = box
            boxes.append(box)
            windows.append(logits[0, :, top:top + y2 - y1, left:left + x2 - x1].float())
        merged = merge_windows(image.shape[-2:], boxes, windows)
        name = osp.splitext(osp.basename(data_samples[0].img_path))[0]
        save_stages(
            osp.join(out, 'stages', name + '.npz'), image, boxes, windows, merged, record['final'],
            stride)
        return results

    segmentor.forward_feature = recorded_forward_feature
    segmentor.postprocess_result = recorded_postprocess
    segmentor.predict = recorded_predict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('method', choices=sorted(REFERENCES))
    parser.add_argument('config', help="the reference's configs/cfg_<dataset>.py")
    parser.add_argument('weights', help='OpenAI-format CLIP state dict')
    parser.add_argument('out', help='output folder')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--num-templates', type=int, default=None)
    parser.add_argument('--stages', action='store_true')
    parser.add_argument('--stage-stride', type=int, default=4)
    parser.add_argument('--vfm-dir', help='ProxyCLIP: a facebookresearch/dino checkout')
    parser.add_argument('--vfm-weights', help='ProxyCLIP: DINO weights (official key layout)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides of the reference config (Python literals)')
    return parser.parse_args(argv)


def main(argv=None):
    import ast
    import importlib

    from mmengine.config import Config
    from mmengine.runner import Runner

    args = parse_args(argv)
    spec = REFERENCES[args.method]
    os.makedirs(args.out, exist_ok=True)
    patches = []
    if args.num_templates:
        patches.append(truncate_templates(args.num_templates))
    patches += _stub_unused_imports(args.method)
    if spec.get('vfm_file'):
        patches += _stand_in_missing_modules()
    if spec.get('vfm_hub'):
        if not (args.vfm_dir and args.vfm_weights):
            raise SystemExit(f'{args.method} needs --vfm-dir and --vfm-weights')
        patches.append(
            _redirect_dino_hub(
                osp.abspath(args.vfm_dir), osp.abspath(args.vfm_weights), spec['vfm_hub']))
    importlib.import_module('custom_datasets')  # as the references' eval.py do
    segmentor_module = importlib.import_module(spec['module'])
    cfg = Config.fromfile(args.config)
    if spec['loader'] == 'open_clip':
        patches.append(
            _redirect_open_clip(segmentor_module, osp.abspath(args.weights), args.device))
    else:
        cfg.model.clip_path = osp.abspath(args.weights)
    cfg.model.device = args.device
    if spec.get('vfm_file'):  # CASS's eval.py: dataset=<config path>, --pamr off
        cfg.model.dataset, cfg.model.pamr_steps = args.config, 0
    for option in args.cfg_options:
        key, _, value = option.partition('=')
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        cfg.merge_from_dict({key: value})
        patches.append(f'config override {key}={value!r}')
        log(patches[-1])
    cfg.work_dir = osp.join(args.out, 'runner')
    cfg.launcher = 'none'
    loader = cfg.test_dataloader
    loader.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader.dataset.data_root = args.data_root
    with open(osp.join(args.out, 'meta.json'), 'w') as f:
        json.dump(
            dict(
                method=args.method,
                config=args.config,
                device=args.device,
                patches=patches,
                torch=torch.__version__),
            f,
            indent=1)
    torch.set_grad_enabled(False)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(LabelSaverHook(args.out), 'LOW')
    if args.stages:
        install_stage_recorders(runner.model, args.out, args.stage_stride,
                                spec.get('pad_multiple'))
    # The same RNG state on both sides when the test starts (CASS's svd_lowrank draws from it).
    torch.manual_seed(0)
    runner.test()


if __name__ == '__main__':
    main()
