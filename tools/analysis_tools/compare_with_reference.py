"""End-to-end agreement of a zero-shot preset with the official repository of its method.

    python tools/analysis_tools/compare_with_reference.py --reference-dir DIR METHOD DATASET \
        [--seed S] [--num-images N] [--work-dir D] [--stages] [--arch {ViT-B/16,tiny}] \
        [--num-templates K] [--device cpu|cuda] [--cfg-options k=v ...] \
        [--reference-options k=v ...] [--vfm-dir DINO_DIR] [--no-distinct-head-spectra]

Both sides get the same random OpenAI-format CLIP weights (a plain fp16 state dict, which the
references' ``clip.load(path)`` and ClearCLIP's OpenAI loader accept; converted for ours with
``silc_seg.converters``), for ProxyCLIP also the same random DINO weights in the official layout
(the reference's ``torch.hub.load`` builds the hub model from a facebookresearch/dino checkout,
``--vfm-dir``; ours converts them with ``convert_dino_state_dict``), and the same generated,
non-square images in the dataset's layout (for CASS, whose spectral head assignment is a tie on
statistically alike random heads, the last blocks' key rows of both towers are shaped per head,
``distinct_head_spectra``). Ours
runs ``configs/zero_shot/<method>/<method>_vit-b16_<dataset>.py`` through mmseg's test loop in
this process; the reference runs in a subprocess (``reference_runner.py`` with
``PYTHONPATH`` = a temporary copy of DIR, run-time patches logged) with its own
``configs/cfg_<dataset>.py`` and segmentor. Printed: the share of pixels with the same label
per image and in total; with ``--stages`` the largest difference of every stage (input, text
embeddings, per-window logits, merged logits, final logits) and the first one above ``--atol``.
Nothing of the reference is imported here. Details and measured tables:
docs/zero_shot_protocols.md ("End-to-end agreement").
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from silc_seg.utils import import_file_as_module

# The script the reference runs in (never importing silc_seg): its tables and savers are shared.
reference_runner = import_file_as_module(
    osp.join(osp.dirname(osp.abspath(__file__)), 'reference_runner.py'), 'reference_runner')
REFERENCE_CONFIGS = reference_runner.REFERENCE_CONFIGS
REFERENCES = reference_runner.REFERENCES
LabelSaverHook = reference_runner.LabelSaverHook
save_stages = reference_runner.save_stages

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
METHODS = sorted(REFERENCES)
DATASETS = sorted(REFERENCE_CONFIGS)
STAGES = ('input', 'text', 'windows', 'merged', 'final', 'labels')
# Dataset layouts (mmseg's, which the references' configs also read): image and annotation
# paths of image ``i``, the split file or None, and the annotation values.
VOC = dict(
    image='JPEGImages/2007_{:06d}.jpg',
    annotation='SegmentationClass/2007_{:06d}.png',
    split='ImageSets/Segmentation/val.txt',
    values=list(range(21)) + [255])
CONTEXT = dict(
    image='JPEGImages/2008_{:06d}.jpg',
    annotation='SegmentationClassContext/2008_{:06d}.png',
    split='ImageSets/SegmentationContext/val.txt',
    values=list(range(60)))
LAYOUTS = {
    'ade150':
    dict(
        image='images/validation/ADE_val_{:08d}.jpg',
        annotation='annotations/validation/ADE_val_{:08d}.png',
        split=None,
        values=list(range(151))),
    'voc21':
    VOC,
    'voc20':
    VOC,
    'pc59':
    CONTEXT,
    'pc60':
    CONTEXT,
    'cityscapes':
    dict(
        image='leftImg8bit/val/frankfurt/frankfurt_000000_{:06d}_leftImg8bit.png',
        annotation='gtFine/val/frankfurt/frankfurt_000000_{:06d}_gtFine_'
        'labelTrainIds.png',
        split=None,
        values=list(range(19)) + [255]),
    'coco-stuff171':
    dict(
        image='images/val2017/{:012d}.jpg',
        annotation='annotations/val2017/{:012d}_labelTrainIds.png',
        split=None,
        values=list(range(171)) + [255]),
    'coco-object':
    dict(
        image='images/val2017/{:012d}.jpg',
        annotation='annotations/val2017/{:012d}_instanceTrainIds.png',
        split=None,
        values=list(range(81)) + [255]),
}
# Random towers: OpenAI's ViT-B/16, or a narrow one of the same geometry (patch 16, 14x14
# grid, 12 image blocks, 64 channels per head) that CPUs run in seconds. Heads are width / 64
# in the references' build_model.
# ``vfm``: the proxy DINO tower of ProxyCLIP (patch 8, 28x28 stored grid; ViT-B/8, or narrow).
ARCHS = {
    'ViT-B/16':
    None,
    'tiny':
    dict(
        embed_dim=64,
        vision=dict(width=128, layers=12),
        text=dict(width=128, layers=1),
        vfm=dict(embed_dim=128, depth=4, num_heads=2)),
}
# timm's architecture of each reference VFM, whose state dict keys are the official ones.
VFM_ARCHS = {'dino_vitb8': 'vit_base_patch8_224.dino'}
# ``distinct_head_spectra`` (CASS): the key rank of each head of the last block (the same set on
# both towers) and the gain of the position embedding (position-specific, nearly isotropic
# token features, so that the key graphs' spectra follow the ranks), so that CASS's spectral
# head assignment has one optimum with a margin well above float noise.
HEAD_KEY_RANKS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 17, 20)
POS_EMBED_GAIN = 30.0


class ReferenceDirError(ValueError):
    """The reference directory is missing or is not a checkout of the method's repository."""


def check_vfm_dir(path: Optional[str], method: str) -> Optional[str]:
    """The facebookresearch/dino checkout ProxyCLIP's hub call is redirected to, as an
    absolute folder (None for the other methods), else a clear error."""
    if not REFERENCES[method].get('vfm_hub'):
        return None
    if not path or not osp.isdir(path):
        raise ReferenceDirError(f'{method} builds its proxy VFM with torch.hub from '
                                'facebookresearch/dino: --vfm-dir must be a checkout of '
                                f'https://github.com/facebookresearch/dino (got {path!r})')
    missing = [name for name in reference_runner.VFM_FILES if not osp.isfile(osp.join(path, name))]
    if missing:
        raise ReferenceDirError(f'--vfm-dir {path} is not a checkout of facebookresearch/dino: '
                                f'it lacks {", ".join(missing)}')
    return osp.abspath(path)


def check_reference_dir(path: Optional[str], method: str, dataset: str) -> str:
    """``path`` as an absolute folder with the files the run needs, else a clear error."""
    repo = REFERENCES[method]['repo']
    if not path:
        raise ReferenceDirError(f'--reference-dir is required: a checkout of '
                                f'https://github.com/{repo}')
    if not osp.isdir(path):
        raise ReferenceDirError(f'--reference-dir {path} does not exist (expected a checkout of '
                                f'https://github.com/{repo})')
    missing = [
        name for name in reference_runner.reference_files(method, dataset)
        if not osp.isfile(osp.join(path, name))
    ]
    if missing:
        raise ReferenceDirError(f'--reference-dir {path} is not a checkout of {repo} for '
                                f'{dataset}: it lacks {", ".join(missing)}')
    return osp.abspath(path)


# ------------------------------------------------------------------------------ inputs
def head_key_profiles(num_heads: int, head_dim: int, floor: float = 0.01) -> torch.Tensor:
    """``(num_heads, head_dim)`` scales of the key rows of each head: 1 on the first
    ``HEAD_KEY_RANKS[h]`` rows of head ``h`` (cycled when there are more heads), ``floor`` on
    the others, so that the heads' key graphs have distinct ranks and spectra."""
    ranks = [min(HEAD_KEY_RANKS[h % len(HEAD_KEY_RANKS)], head_dim) for h in range(num_heads)]
    rows = torch.arange(head_dim)
    return torch.stack([(rows < rank).float() * (1 - floor) + floor for rank in ranks])


def _shape_key_rows(weight: torch.Tensor, bias: Optional[torch.Tensor], width: int,
                    num_heads: int) -> None:
    """Shape the key rows (``[width, 2 width)`` of a fused qkv projection) in place: in each
    head the first half of the rows is scaled by :func:`head_key_profiles`, the second half is
    its negative. The keys are then symmetric about 0 (min = -max), so CASS's min / max range
    match of the VFM keys adds no common offset (which would dominate every VFM spectrum)."""
    half = width // num_heads // 2
    scales = head_key_profiles(num_heads, half).to(weight)
    for head, scale in enumerate(scales):
        start = width + head * 2 * half
        for param in (weight, bias):
            if param is None:
                continue
            rows = param[start:start + half] * (scale[:, None] if param.dim() == 2 else scale)
            param[start:start + half] = rows
            param[start + half:start + 2 * half] = -rows


def make_openai_weights(path: str,
                        arch: str = 'ViT-B/16',
                        seed: int = 0,
                        distinct_head_spectra: bool = False) -> Dict:
    """Random CLIP weights in OpenAI's layout and dtype (fp16), saved as a plain state dict.

    Biases and norms get random offsets (open_clip initializes them to 0 / 1), so a swapped or
    dropped one changes the outputs. ``distinct_head_spectra`` (for CASS, whose head
    assignment is tied on heads that are statistically alike): the position embedding is
    multiplied by ``POS_EMBED_GAIN`` and the key rows of the last image block are shaped per
    head by :func:`_shape_key_rows`. Returns the state dict.
    """
    import open_clip
    torch.manual_seed(seed)
    if ARCHS[arch] is None:
        model = open_clip.create_model('ViT-B-16-quickgelu', pretrained=None)
    else:
        spec = ARCHS[arch]
        vision = dict(spec['vision'], patch_size=16, image_size=224, head_width=64)
        text = dict(
            spec['text'], heads=spec['text']['width'] // 64, context_length=77, vocab_size=49408)
        model = open_clip.CLIP(spec['embed_dim'], vision, text, quick_gelu=True)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() <= 1 and 'logit' not in name:
                param.add_(0.1 * torch.randn_like(param))
        if distinct_head_spectra:
            model.visual.positional_embedding.mul_(POS_EMBED_GAIN)
            attn = model.visual.transformer.resblocks[-1].attn
            _shape_key_rows(attn.in_proj_weight, attn.in_proj_bias, attn.embed_dim, attn.num_heads)
    state_dict = {k: v.detach().half() for k, v in model.state_dict().items()}
    torch.save(state_dict, path)
    return state_dict


def make_dino_weights(path: str,
                      model: str,
                      arch: str = 'ViT-B/16',
                      seed: int = 0,
                      distinct_head_spectra: bool = False) -> Dict:
    """Random weights of the DINO hub model ``model`` in the official key layout (timm's
    architecture has the same names), fp32, saved as a plain state dict; biases, norms, the
    class token and the position embedding get random offsets. ``distinct_head_spectra``: the
    position embedding and the key rows of the last block as in :func:`make_openai_weights`.
    Returns the state dict."""
    import timm
    torch.manual_seed(seed + 1)
    spec = ARCHS[arch]
    vit = timm.create_model(
        VFM_ARCHS[model], pretrained=False, num_classes=0, **(spec['vfm'] if spec else {}))
    with torch.no_grad():
        for name, param in vit.named_parameters():
            if param.dim() <= 1 or name in ('cls_token', 'pos_embed'):
                param.add_(0.1 * torch.randn_like(param))
        if distinct_head_spectra:
            vit.pos_embed.mul_(POS_EMBED_GAIN)
            attn = vit.blocks[-1].attn
            _shape_key_rows(attn.qkv.weight, attn.qkv.bias, attn.qkv.in_features, attn.num_heads)
    state_dict = {k: v.detach().clone() for k, v in vit.state_dict().items()}
    torch.save(state_dict, path)
    return state_dict


def convert_for_ours(state_dict: Dict, path: str, vfm_state_dict: Optional[Dict] = None) -> None:
    """Our checkpoint of the OpenAI-format weights (``silc_seg.converters``), with the VFM's
    under ``dense_forward.vfm.`` (as ``tools/model_converters/dino2silc.py --clip``)."""
    from silc_seg.converters import (convert_dino_state_dict, convert_openclip_state_dict,
                                     save_state_dict)
    converted = convert_openclip_state_dict(state_dict)
    if vfm_state_dict is not None:
        converted.update(convert_dino_state_dict(vfm_state_dict, prefix='dense_forward.vfm.'))
    save_state_dict({
        k: v.float()
        for k, v in converted.items()
    },
                    path,
                    meta=dict(source='compare_with_reference random OpenAI-format weights'))


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field with mild noise, (height, width, 3) uint8."""
    coarse = rng.integers(0, 256, (max(2, height // 24), max(2, width // 24), 3), np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.float64)
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def make_dataset(dataset: str, root: str, num_images: int = 2, seed: int = 0) -> List[str]:
    """``num_images`` non-square images (landscape and portrait alternately, sides that are
    not multiples of 16) and random annotations in ``dataset``'s layout; returns the names."""
    layout, rng = LAYOUTS[dataset], np.random.default_rng(seed)
    names = []
    for index in range(num_images):
        short, long = int(rng.integers(200, 300)), 0
        long = short + int(rng.integers(60, 200))
        height, width = (short, long) if index % 2 == 0 else (long, short)
        image_path = osp.join(root, layout['image'].format(index))
        annotation_path = osp.join(root, layout['annotation'].format(index))
        for path in (image_path, annotation_path):
            os.makedirs(osp.dirname(path), exist_ok=True)
        Image.fromarray(random_image(rng, height, width)).save(image_path, quality=95)
        coarse = rng.choice(
            np.array(layout['values'], np.uint8), (height // 32 + 1, width // 32 + 1))
        Image.fromarray(coarse).resize((width, height), Image.NEAREST).save(annotation_path)
        names.append(osp.splitext(osp.basename(image_path))[0])
    if layout['split']:
        split = osp.join(root, layout['split'])
        os.makedirs(osp.dirname(split), exist_ok=True)
        with open(split, 'w') as f:
            f.write('\n'.join(names) + '\n')
    return names


# ------------------------------------------------------------------------------- the runs
def preset_path(method: str, dataset: str) -> str:
    return osp.join(REPO, 'configs', 'zero_shot', method, f'{method}_vit-b16_{dataset}.py')


def run_reference(reference_dir: str,
                  method: str,
                  dataset: str,
                  weights: str,
                  data_root: str,
                  out: str,
                  device: str = 'cpu',
                  num_templates: Optional[int] = None,
                  stages: bool = False,
                  stage_stride: int = 4,
                  options: Optional[List[str]] = None,
                  vfm: Optional[tuple] = None,
                  vfm_weights: Optional[str] = None) -> List[str]:
    """Run the reference in a subprocess on a patched copy of ``reference_dir``; returns the
    patch lines. Its output goes to ``<out>/reference.log``. ``vfm``: (a facebookresearch/dino
    checkout, DINO weights) for ProxyCLIP."""
    copy = osp.join(osp.dirname(out), 'reference_src')
    patches = reference_runner.copy_and_patch(reference_dir, copy, method, device)
    command = [
        sys.executable,
        osp.abspath(reference_runner.__file__), method,
        osp.join('configs', REFERENCE_CONFIGS[dataset]),
        osp.abspath(weights),
        osp.abspath(out), '--data-root',
        osp.abspath(data_root), '--device', device, '--stage-stride',
        str(stage_stride)
    ]
    if vfm:
        command += ['--vfm-dir', vfm[0], '--vfm-weights', osp.abspath(vfm[1])]
    command += ['--num-templates', str(num_templates)] if num_templates else []
    command += ['--stages'] if stages else []
    command += ['--cfg-options', *options] if options else []
    env = dict(os.environ, PYTHONPATH=copy, PYTHONDONTWRITEBYTECODE='1')
    if vfm_weights:
        env['REFERENCE_VFM_WEIGHTS'] = osp.abspath(vfm_weights)
    os.makedirs(out, exist_ok=True)
    log_path = osp.join(out, 'reference.log')
    with open(log_path, 'w') as log_file:
        result = subprocess.run(
            command, cwd=copy, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    with open(log_path) as f:
        lines = f.read().splitlines()
    patches += [line[len('[reference] '):] for line in lines if line.startswith('[reference] ')]
    if result.returncode != 0:
        tail = '\n'.join(lines[-25:])
        raise RuntimeError(f'the reference run failed (exit {result.returncode}); last lines of '
                           f'{log_path}:\n{tail}')
    return patches


def tiny_overrides(arch: str, method: str = '') -> dict:
    spec = ARCHS[arch]
    if spec is None:
        return {}
    heads = dict(vision=spec['vision']['width'] // 64, text=spec['text']['width'] // 64)
    vfm = {
        'model.dense_forward.vfm.timm_kwargs': spec['vfm']
    } if REFERENCES[method].get('vfm_hub') else {}
    return {
        **vfm,
        'model.image_encoder.width': spec['vision']['width'],
        'model.image_encoder.depth': spec['vision']['layers'],
        'model.image_encoder.num_heads': heads['vision'],
        'model.image_encoder.output_dim': spec['embed_dim'],
        'model.text_encoder.width': spec['text']['width'],
        'model.text_encoder.depth': spec['text']['layers'],
        'model.text_encoder.num_heads': heads['text'],
        'model.text_encoder.output_dim': spec['embed_dim'],
    }


def _find_box(image: torch.Tensor, crop: torch.Tensor, boxes) -> tuple:
    for box in boxes:
        y1, y2, x1, x2 = box
        if crop.shape[-2:] == (y2 - y1, x2 - x1) and torch.equal(crop, image[:, y1:y2, x1:x2]):
            return box
    raise RuntimeError(f'a {tuple(crop.shape)} window matches no window of the input')


def install_our_recorders(model, out: str, stride: int) -> None:
    """Record the stages of :class:`ZeroShotSegmentor` (one image per batch): the input and
    merged logits of ``inference``, the windows of ``_patch_logits`` / ``_to_pixels`` and the
    logits that ``class_probabilities`` receives."""
    from silc_seg.models.segmentors.zero_shot_segmentor import sliding_windows
    os.makedirs(osp.join(out, 'stages'), exist_ok=True)
    record: dict = {}
    inference, patch_logits, to_pixels = model.inference, model._patch_logits, model._to_pixels
    class_probabilities, postprocess = (model.decode_head.class_probabilities,
                                        model.postprocess_image)

    def recorded_patch_logits(windows, text_embeddings):
        record['crops'].extend(windows)
        return patch_logits(windows, text_embeddings)

    def recorded_to_pixels(logits, padding, size):
        pixels = to_pixels(logits, padding, size)
        record['windows'].append(pixels[0].float())
        return pixels

    def recorded_inference(inputs, batch_img_metas):
        record.update(crops=[], windows=[])
        logits = inference(inputs, batch_img_metas)
        record.update(image=model.unpadded_images(inputs, batch_img_metas)[0], merged=logits[0])
        return logits

    def recorded_class_probabilities(query_logits, *args):
        record['final'] = query_logits.detach().clone()
        return class_probabilities(query_logits, *args)

    def recorded_postprocess(sample, image, logits):
        postprocess(sample, image, logits)
        height, width = record['image'].shape[-2:]
        test_cfg = model.test_cfg
        candidates = ([(0, height, 0, width)] if test_cfg['mode'] != 'slide' else sliding_windows(
            height, width, test_cfg['crop_size'], test_cfg['stride']))
        boxes = [_find_box(record['image'], crop, candidates) for crop in record['crops']]
        name = osp.splitext(osp.basename(sample.img_path))[0]
        save_stages(
            osp.join(out, 'stages', name + '.npz'), record['image'], boxes, record['windows'],
            record['merged'], record['final'], stride)

    model._patch_logits, model._to_pixels = recorded_patch_logits, recorded_to_pixels
    model.inference, model.postprocess_image = recorded_inference, recorded_postprocess
    model.decode_head.class_probabilities = recorded_class_probabilities


def run_ours(method: str,
             dataset: str,
             checkpoint: str,
             data_root: str,
             out: str,
             arch: str = 'ViT-B/16',
             num_templates: Optional[int] = None,
             stages: bool = False,
             stage_stride: int = 4,
             cfg_options: Optional[dict] = None) -> None:
    """Our preset through mmseg's test loop, saving label maps (and stages) under ``out``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import silc_seg  # noqa: F401  (registers the modules)
    from silc_seg.models.utils import get_prompt_templates, unwrap_model
    from silc_seg.utils import load_model_checkpoint, prepare_runner_cfg
    from silc_seg.utils.log_utils import quiet_library_warnings, runner_console_summary

    quiet_library_warnings()
    config = preset_path(method, dataset)
    cfg = Config.fromfile(config)
    overrides = tiny_overrides(arch, method)
    if num_templates:
        overrides['model.templates'] = get_prompt_templates('imagenet80')[:num_templates]
    cfg.merge_from_dict(overrides)
    cfg.test_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.data_root = data_root
    prepare_runner_cfg(cfg, config, osp.join(out, 'runner'), cfg_options)
    cfg.load_from = None
    with runner_console_summary():
        runner = Runner.from_cfg(cfg)
    model = unwrap_model(runner.model)
    load_model_checkpoint(model, checkpoint)
    runner.register_hook(LabelSaverHook(out), 'LOW')
    if stages:
        install_our_recorders(model, out, stage_stride)
    torch.manual_seed(0)  # as the reference runner does before its test loop
    runner.test()
    if stages:
        np.save(
            osp.join(out, 'stages', 'text.npy'),
            model.text_embeddings()[0].float().cpu().numpy())


# ------------------------------------------------------------------------------ comparison
def label_agreement(ours: str, reference: str) -> dict:
    """Share of pixels with the same label, per image and over all images.

    Args:
        ours (str): folder with ``labels/<image>.npy`` of our run.
        reference (str): the same of the reference run.

    Returns:
        dict: ``images`` {name: dict(pixels, same)}, ``total`` dict(pixels, same, share),
        ``missing`` names found on one side only.
    """

    def names(folder):
        path = osp.join(folder, 'labels')
        return {osp.splitext(n)[0] for n in os.listdir(path)} if osp.isdir(path) else set()

    ours_names, reference_names = names(ours), names(reference)
    common = sorted(ours_names & reference_names)
    if not common:
        raise RuntimeError(f'no image was predicted by both runs ({len(ours_names)} label maps '
                           f'in {ours}, {len(reference_names)} in {reference})')
    images, pixels, same = {}, 0, 0
    for name in common:
        a = np.load(osp.join(ours, 'labels', name + '.npy'))
        b = np.load(osp.join(reference, 'labels', name + '.npy'))
        if a.shape != b.shape:
            raise RuntimeError(f'{name}: our label map is {a.shape}, the reference\'s {b.shape}')
        images[name] = dict(
            pixels=int(a.size), same=int((a == b).sum()), share=float((a == b).mean()))
        pixels, same = pixels + a.size, same + int((a == b).sum())
    return dict(
        images=images,
        total=dict(pixels=int(pixels), same=same, share=same / pixels),
        missing=sorted(ours_names ^ reference_names))


def _max_diff(a: np.ndarray, b: np.ndarray, what: str) -> float:
    if a.shape != b.shape:
        raise ValueError(f'{what}: shapes differ, ours {a.shape} vs reference {b.shape}')
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def stage_report(ours: str, reference: str, atol: float = 1e-3) -> dict:
    """Largest difference of each stage and the first stage above ``atol``.

    Stages (files of :func:`reference_runner.save_stages`): ``input`` (normalized image),
    ``text`` (query embeddings), ``windows`` (per-window logits, matched by box), ``merged``,
    ``final`` (logits at the original size) and ``labels`` (share of differing pixels).

    Returns:
        dict: ``stages`` [dict(stage, max_abs_diff, ok, note)], ``first_divergent`` (a stage
        name or None).
    """
    rows = []

    def add(stage, diff=None, note=''):
        ok = diff is not None and diff <= atol and not note
        rows.append(dict(stage=stage, max_abs_diff=diff, ok=ok, note=note))

    def load(folder, name):
        with np.load(osp.join(folder, 'stages', name)) as data:
            return dict(data)

    names = sorted(n for n in os.listdir(osp.join(ours, 'stages')) if n.endswith('.npz'))
    missing = [n for n in names if not osp.isfile(osp.join(reference, 'stages', n))]
    if not names or missing:
        raise RuntimeError(f'stage files missing on the reference side: {missing or "all"}')
    pairs = [(load(ours, n), load(reference, n), n[:-4]) for n in names]
    per_stage: Dict[str, List[float]] = {s: [] for s in ('input', 'merged', 'final')}
    notes: Dict[str, str] = {}
    windows: List[float] = []
    for a, b, name in pairs:
        for stage in per_stage:
            try:
                per_stage[stage].append(_max_diff(a[stage], b[stage], f'{name} {stage}'))
            except ValueError as err:
                notes.setdefault(stage, str(err))
        boxes_a = [tuple(box) for box in a['boxes']]
        boxes_b = {tuple(box): i for i, box in enumerate(b['boxes'])}
        if set(boxes_a) != set(boxes_b):
            notes.setdefault(
                'windows', f'{name}: windows differ, ours {sorted(boxes_a)} vs '
                f'reference {sorted(boxes_b)}')
            continue
        for i, box in enumerate(boxes_a):
            try:
                windows.append(
                    _max_diff(a[f'window_{i}'], b[f'window_{boxes_b[box]}'],
                              f'{name} window {box}'))
            except ValueError as err:
                notes.setdefault('windows', str(err))
    add('input', max(per_stage['input'], default=None), notes.get('input', ''))
    try:
        add(
            'text',
            _max_diff(
                np.load(osp.join(ours, 'stages', 'text.npy')),
                np.load(osp.join(reference, 'stages', 'text.npy')), 'text'))
    except ValueError as err:
        add('text', None, str(err))
    add('windows', max(windows, default=None), notes.get('windows', ''))
    for stage in ('merged', 'final'):
        add(stage, max(per_stage[stage], default=None), notes.get(stage, ''))
    agreement = label_agreement(ours, reference)['total']
    rows.append(
        dict(
            stage='labels',
            max_abs_diff=None,
            ok=agreement['same'] == agreement['pixels'],
            note=f"{100 * agreement['share']:.4f} % same"))
    first = next((row['stage'] for row in rows if not row['ok']), None)
    return dict(stages=rows, first_divergent=first, atol=atol)


def format_report(agreement: dict, stages: Optional[dict] = None) -> str:
    lines = [f"{'image':<28} {'pixels':>9} {'same label':>12}"]
    for name, image in agreement['images'].items():
        lines.append(f"{name:<28} {image['pixels']:>9} {100 * image['share']:>11.4f}%")
    total = agreement['total']
    lines.append(f"{'total':<28} {total['pixels']:>9} {100 * total['share']:>11.4f}%")
    if agreement['missing']:
        lines.append(f"predicted on one side only: {', '.join(agreement['missing'])}")
    if stages:
        lines.append(f"stages (max |ours - reference|, atol {stages['atol']:g}):")
        for row in stages['stages']:
            diff = '-' if row['max_abs_diff'] is None else f"{row['max_abs_diff']:.3g}"
            lines.append(f"  {row['stage']:<8} {diff:>10}  {'ok' if row['ok'] else 'DIFFERS'}"
                         f"  {row['note']}".rstrip())
        lines.append(f"first diverging stage: {stages['first_divergent'] or 'none'}")
    return '\n'.join(lines)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('method', choices=METHODS)
    parser.add_argument('dataset', choices=DATASETS)
    parser.add_argument('--reference-dir', help="a checkout of the method's official repository")
    parser.add_argument(
        '--reference-commit',
        help='the commit of --reference-dir when it is not a git checkout '
        '(recorded in the report)')
    parser.add_argument(
        '--vfm-dir',
        help='proxyclip: a checkout of facebookresearch/dino, whose hub model the '
        "reference's torch.hub.load builds")
    parser.add_argument(
        '--vfm-commit', help='the commit of --vfm-dir when it is not a git checkout')
    parser.add_argument('--seed', type=int, default=0, help='weights and images')
    parser.add_argument('--num-images', type=int, default=2)
    parser.add_argument(
        '--work-dir', help='default: work_dirs/compare_with_reference/'
        '<method>_<dataset>')
    parser.add_argument(
        '--stages', action='store_true', help='also compare the intermediate stages')
    parser.add_argument(
        '--stage-stride', type=int, default=4, help='stages are compared at every S-th pixel')
    parser.add_argument(
        '--atol', type=float, default=1e-3, help='largest stage difference counted as agreement')
    parser.add_argument(
        '--arch',
        choices=sorted(ARCHS),
        default='ViT-B/16',
        help='random towers: ViT-B/16, or a narrow one of the same geometry')
    parser.add_argument(
        '--num-templates',
        type=int,
        default=None,
        help='only the first K of the 80 prompt templates, on both sides '
        '(default: all, as the protocols)')
    parser.add_argument(
        '--no-distinct-head-spectra',
        action='store_true',
        help='cass: plain random heads (its spectral head assignment is then a near tie)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='overrides of our preset, e.g. model.dense_variant=clearclip_vanilla')
    parser.add_argument(
        '--reference-options',
        nargs='+',
        default=None,
        help='overrides of the reference config (Python literals), e.g. '
        "model.model_type='ClearCLIP'")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        reference_dir = check_reference_dir(args.reference_dir, args.method, args.dataset)
        vfm_dir = check_vfm_dir(args.vfm_dir, args.method)
    except ReferenceDirError as err:
        raise SystemExit(f'error: {err}')
    if REFERENCES[args.method].get('vfm_file') and args.arch != 'ViT-B/16':
        # The reference builds a full DINO ViT-B/8 and splits its keys into CLIP's heads.
        raise SystemExit(f'error: {args.method} needs --arch ViT-B/16 (its DINO ViT-B/8 keys are '
                         "split into the CLIP tower's 12 heads)")
    if args.num_images < 1:
        raise SystemExit('error: --num-images must be >= 1')
    work_dir = osp.abspath(
        args.work_dir
        or osp.join('work_dirs', 'compare_with_reference', f'{args.method}_{args.dataset}'))
    os.makedirs(work_dir, exist_ok=True)
    ours, reference = osp.join(work_dir, 'ours'), osp.join(work_dir, 'reference')
    data_root = osp.join(work_dir, 'data')
    for stale in (ours, reference, data_root):  # a previous run's images and label maps
        if osp.isdir(stale):
            shutil.rmtree(stale)
    weights = osp.join(work_dir, 'openai_random.pt')
    spec = REFERENCES[args.method]
    # CASS: heads with distinct spectra, else its head assignment is a tie that float noise
    # resolves differently on each side (docs/zero_shot_protocols.md, "End-to-end agreement").
    distinct = spec.get('distinct_head_spectra', False) and not args.no_distinct_head_spectra
    state_dict = make_openai_weights(weights, args.arch, args.seed, distinct_head_spectra=distinct)
    vfm, vfm_weights, vfm_state_dict = None, None, None
    if vfm_dir:  # ProxyCLIP: its torch.hub DINO, built from the checkout, at the tower's size
        vfm = (vfm_dir, osp.join(work_dir, 'dino_random.pth'))
        vfm_state_dict = make_dino_weights(vfm[1], spec['vfm_hub'], args.arch, args.seed)
    elif spec.get('vfm_file'):  # CASS: a full-size DINO ViT-B/8 read from a weights file
        vfm_weights = osp.join(work_dir, 'vfm_random.pth')
        vfm_state_dict = make_dino_weights(
            vfm_weights, 'dino_vitb8', 'ViT-B/16', args.seed, distinct_head_spectra=distinct)
    checkpoint = osp.join(work_dir, 'ours_random.pth')
    convert_for_ours(state_dict, checkpoint, vfm_state_dict)
    make_dataset(args.dataset, data_root, args.num_images, args.seed)
    patches = run_reference(reference_dir, args.method, args.dataset, weights, data_root,
                            reference, args.device, args.num_templates, args.stages,
                            args.stage_stride, args.reference_options, vfm, vfm_weights)
    run_ours(args.method, args.dataset, checkpoint, data_root, ours, args.arch, args.num_templates,
             args.stages, args.stage_stride, args.cfg_options)
    agreement = label_agreement(ours, reference)
    stages = stage_report(ours, reference, args.atol) if args.stages else None
    commit = reference_runner.git_commit(reference_dir) or args.reference_commit
    report = dict(
        method=args.method,
        dataset=args.dataset,
        repo=REFERENCES[args.method]['repo'],
        commit=commit,
        vfm=dict(
            repo='facebookresearch/dino',
            commit=reference_runner.git_commit(vfm_dir) or args.vfm_commit) if vfm_dir else None,
        arch=args.arch,
        device=args.device,
        seed=args.seed,
        num_templates=args.num_templates,
        distinct_head_spectra=distinct,
        patches=patches,
        agreement=agreement,
        stages=stages,
        command=' '.join(sys.argv))
    with open(osp.join(work_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=1)
    print(f"{args.method} on {args.dataset}: ours "
          f"{osp.relpath(preset_path(args.method, args.dataset), REPO)} vs "
          f"{REFERENCES[args.method]['repo']} @ {commit or 'unknown commit'} "
          f"({args.arch} random weights, {args.device})" +
          (f"; VFM facebookresearch/dino @ {report['vfm']['commit'] or 'unknown commit'}"
           if vfm_dir else ''))
    for line in patches:
        print(f'reference patch: {line}')
    print(format_report(agreement, stages))
    return report


if __name__ == '__main__':
    main()
