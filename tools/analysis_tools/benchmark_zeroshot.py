"""Zero-shot segmentation cost: text-classifier build time, and images/s against the loop the
reference code runs.

    python tools/analysis_tools/benchmark_zeroshot.py CONFIG [--checkpoint CKPT]
        [--text-classes N] [--num-images 4] [--image-size 336 448] [--repeats 2]
        [--batch-size 1] [--device cpu] [--cfg-options model.image_encoder.arch=... ...]
        [--reference-dir SCLIP_CHECKOUT [--num-templates 1] [--arch {ViT-B/16,tiny}]]

Everything runs in one process on the same model (random weights without ``--checkpoint``:
speed does not depend on the weights), the config dataset's classes and synthetic images.

1. **Text classifier build** (``--text-classes N``: the first N classes, 0 skips; all by
   default): the time to embed every ``template.format(name)`` prompt of the vocabulary,

   - ``previous``: as before the padding trim: :class:`TextClassifier` over the tower without
     its ``trim_padding`` (:class:`FullRows`), every batch on the full ``context_length`` rows;
   - ``trimmed``: :class:`TextClassifier` as used now (a causal CLIP tower trims the padding
     after the longest prompt of each batch);
   - ``disk write`` / ``disk read``: the same with the on-disk cache, first computed and stored,
     then read back by a fresh classifier (hashing the weights and token ids included).

   The embeddings of the paths are compared (max abs difference printed, must be < 1e-5).
2. **Images/s** (``--num-images 0`` skips): ``ours`` is :meth:`ZeroShotSegmentor.predict`
   on batches of ``--batch-size`` images (all windows of the batch's images pooled through the
   image tower, ``window_batch_size`` at a time), inside ``TextClassifier.frozen()`` as the
   test loop runs it (``ModelDatasetMetaHook``: the text weights fingerprinted once per run);
   ``loop``
   is the loop of SCLIP's reference code (wangf3014/SCLIP ``clip_segmentor.py``,
   ``forward_slide`` / ``forward_feature`` / ``postprocess_result``), written out below: the
   text embeddings computed once beforehand, every sliding window through the image tower on
   its own, window logits upsampled and added into a full-image sum, then softmax, the max over
   each class's synonyms (with a scatter instead of SCLIP's one-hot product, which would need a
   classes x queries x H x W tensor) and the arg-max. Neither path pays for the text embeddings
   here (both build them once, before the timing). The two must predict the same labels (checked).
3. **The official code** (``--reference-dir``, SCLIP presets only): a checkout of
   wangf3014/SCLIP, its ``CLIPForSegmentation`` (``clip_segmentor.py``: ``clip.load``, its
   own tower, ``forward_slide``, ``postprocess_result``) built in this process from its
   ``configs/cfg_<dataset>.py`` (only the segmentor module is imported: its datasets are not
   registered), timed interleaved with the two paths above on the same random OpenAI-format
   weights (``compare_with_reference.py``'s, converted for ours), the same images and the
   first ``--num-templates`` templates on both sides; its labels are compared with ours.

Every path also reports the seconds spent inside its image tower (``encode_dense`` for ours
and the loop, ``encode_image`` for the official code): the loop's time over our tower's
time bounds what any change outside the tower could reach.
"""
import argparse
import importlib
import os.path as osp
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from mmseg.structures import SegDataSample

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.models.segmentors.zero_shot_segmentor import centred_padding, sliding_windows
from silc_seg.models.utils import TextClassifier, build_vocabulary, get_prompt_templates
from silc_seg.registry import DATASETS, MODELS
from silc_seg.utils import add_cfg_options_argument, import_file_as_module, load_config
from silc_seg.utils.log_utils import quiet_library_warnings
from silc_seg.utils.timing import Stopwatch


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark zero-shot segmentation')
    parser.add_argument('config', help='zero-shot config file')
    parser.add_argument('--checkpoint', help='optional checkpoint')
    parser.add_argument(
        '--text-classes',
        type=int,
        default=None,
        help='classes for the text-classifier timing (default all, 0 skips)')
    parser.add_argument('--num-images', type=int, default=4, help='0 skips the image timing')
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=(336, 448),
        metavar=('H', 'W'),
        help='preprocessed image size')
    parser.add_argument('--repeats', type=int, default=2, help='timed passes (best is kept)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images per predict call of ours (the loop is per image)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--reference-dir',
        help='a checkout of wangf3014/SCLIP: its segmentor is timed too, on the same random '
        'OpenAI-format weights (converted for ours) and images (SCLIP presets only)')
    parser.add_argument(
        '--num-templates',
        type=int,
        default=1,
        help='with --reference-dir: the first K of the 80 templates, on both sides')
    parser.add_argument(
        '--arch',
        choices=('ViT-B/16', 'tiny'),
        default='ViT-B/16',
        help='with --reference-dir: the random towers (compare_with_reference.py\'s)')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def dataset_classes(config):
    dataset = config.test_dataloader.dataset
    metainfo = dataset.get('metainfo') or {}
    if 'classes' in metainfo:
        return list(metainfo['classes'])
    return list(DATASETS.get(dataset.type).METAINFO['classes'])


def best_times(functions, repeats, device, inner=None):
    """Best wall time of each function over ``repeats`` passes, the functions interleaved so
    that a load change on a shared machine hits all alike.

    Args:
        functions (list[callable]): the paths, called without arguments.
        repeats (int): passes over all paths.
        device (str): where they run (synchronised around each call).
        inner (Stopwatch, optional): a stopwatch wrapped around a part of the paths (e.g. the
            image tower): its time within each path's best pass is returned too.

    Returns:
        tuple: best seconds per path, the last results per path and, with ``inner``, its
        seconds within each best pass (else None).
    """
    watches = [Stopwatch(device) for _ in functions]
    timings = [[] for _ in functions]
    inner_timings = [[] for _ in functions]
    results = [None] * len(functions)
    for _ in range(repeats):
        for index, (function, watch) in enumerate(zip(functions, watches)):
            if inner is not None:
                inner.take()
            results[index] = watch.wrap(function)()
            timings[index].append(watch.take())
            inner_timings[index].append(inner.take() if inner is not None else None)
    best = [min(range(len(t)), key=t.__getitem__) for t in timings]
    return ([t[i] for t, i in zip(timings, best)], results,
            [t[i] for t, i in zip(inner_timings, best)] if inner is not None else None)


# ------------------------------------------------------------------------------ text classifier
class FullRows(nn.Module):
    """The text tower without ``trim_padding``: :class:`TextClassifier` then encodes the full
    ``context_length`` token rows, as before the padding trim."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, token_ids):
        return self.tower(token_ids)


def classifier_of(model, text_encoder, cache_dir=None):
    classifier = model.text_classifier
    return TextClassifier(
        text_encoder,
        model.tokenizer,
        classifier.templates,
        name_rule=classifier.name_rule,
        template_reduction=classifier.template_reduction,
        batch_size=classifier.batch_size,
        cache_dir=cache_dir)


def time_text_classifier(model, vocabulary, total_classes, device):
    queries = [[name] for names in vocabulary for name in names]
    num_prompts = len(queries) * len(model.templates)
    print(f'text classifier: {len(vocabulary)} of {total_classes} classes, {len(queries)} '
          f'names x {len(model.templates)} templates = {num_prompts} prompts, batches of '
          f'{model.text_classifier.batch_size}')
    # Tokenizer warm-up (BPE results are memoized): every path below finds the same memo.
    model.tokenizer(
        [template.format(name) for (name, ) in queries for template in model.templates])
    timings = {}
    with torch.no_grad():
        watch = Stopwatch(device)
        previous = watch.wrap(classifier_of(model, FullRows(
            model.text_encoder)).encode)(queries).embeddings
        timings['previous'] = watch.take()
        trimmed = watch.wrap(model.text_classifier.encode)(queries).embeddings
        timings['trimmed'] = watch.take()
        with tempfile.TemporaryDirectory() as cache_dir:
            written = watch.wrap(classifier_of(model, model.text_encoder,
                                               cache_dir))(queries).embeddings
            timings['disk write'] = watch.take()
            read = watch.wrap(classifier_of(model, model.text_encoder,
                                            cache_dir))(queries).embeddings
            timings['disk read'] = watch.take()
    difference = max((trimmed - previous).abs().max().item(),
                     (written - previous).abs().max().item())
    scale = total_classes / len(vocabulary)
    for name, seconds in timings.items():
        line = f'  {name:10s}: {seconds:8.2f} s'
        if scale != 1 and not name.startswith('disk'):
            # Linear in the number of prompts (the disk paths are not: hashing the weights
            # costs the same for any vocabulary).
            line += f'  (extrapolated to {total_classes} classes: {seconds * scale:8.1f} s)'
        print(line)
    print(f'  speed-up trimmed / previous: {timings["previous"] / timings["trimmed"]:.2f}x; '
          f'disk read / previous: {timings["previous"] / timings["disk read"]:.1f}x')
    print(f'  max |trimmed - previous| = {difference:.2e}; disk read identical to written: '
          f'{torch.equal(read, written)}')
    if difference > 1e-5 or not torch.equal(read, written):
        raise RuntimeError('the text classifier paths disagree')


# ---------------------------------------------------------------------------------- images/s
@torch.no_grad()
def reference_loop_predict(model, images, text_embeddings, query_to_class):
    """SCLIP's reference loop (see the module docstring), on our towers: one window at a time."""
    crop_h, crop_w = model.test_cfg['crop_size']
    num_queries, num_classes = len(query_to_class), max(query_to_class) + 1
    query_index = torch.as_tensor(query_to_class, device=images[0].device)
    labels = []
    for image in images:
        image = image[None]
        height, width = image.shape[-2:]
        total = image.new_zeros((1, num_queries, height, width))
        count = image.new_zeros((1, 1, height, width))
        for y1, y2, x1, x2 in sliding_windows(height, width, (crop_h, crop_w),
                                              model.test_cfg['stride']):
            window = image[:, :, y1:y2, x1:x2]
            patch_size = model.image_encoder.patch_size
            if model.test_cfg.get('partial_patches', 'pad') == 'drop':
                # SCLIP: the patch embedding ignores the pixels that do not fill a patch, the
                # logits are stretched over the whole window.
                left = right = top = bottom = 0
                padded = window[..., :(y2 - y1) // patch_size * patch_size, :(x2 - x1) //
                                patch_size * patch_size]
            else:
                left, right, top, bottom = centred_padding(*window.shape[-2:], patch_size)
                padded = F.pad(window, (left, right, top, bottom))
            dense = model.image_encoder.encode_dense(padded, variant=model.dense_variant)['dense']
            dense = F.normalize(dense, dim=1)
            logits = torch.einsum('bchw,qc->bqhw', dense, text_embeddings)
            logits = F.interpolate(
                logits, size=(y2 - y1 + top + bottom, x2 - x1 + left + right), mode='bilinear')
            logits = logits[:, :, top:top + y2 - y1, left:left + x2 - x1]
            total += F.pad(logits, (x1, width - x2, y1, height - y2))
            count[:, :, y1:y2, x1:x2] += 1
        logits = total / count
        if model.pamr is not None:
            logits = model.pamr(image, logits)
        probabilities = (logits[0] * model.decode_head.logit_scale).softmax(dim=0)
        if num_classes != num_queries:
            # Max over each class's synonyms. SCLIP multiplies by a one-hot (classes, queries)
            # index and takes the max; that (classes x queries x H x W) product does not fit in
            # memory here for ADE-150, so the same max is taken with a scatter.
            index = query_index.view(-1, 1, 1).expand_as(probabilities)
            probabilities = probabilities.new_zeros((num_classes, ) +
                                                    probabilities.shape[1:]).scatter_reduce(
                                                        0,
                                                        index,
                                                        probabilities,
                                                        reduce='amax',
                                                        include_self=False)
        labels.append(model.decode_head.predict_labels(probabilities))  # background rules
    return labels


@torch.no_grad()
def ours_predict(model, images, batch_size=1):
    """``predict`` on batches of same-sized images, as the test loop calls it."""
    labels = []
    with model.text_classifier.frozen():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            samples = [
                SegDataSample(
                    metainfo=dict(img_shape=image.shape[-2:], ori_shape=image.shape[-2:]))
                for image in batch
            ]
            results = model.predict(torch.stack(batch), samples)
            labels.extend(result.pred_sem_seg.data for result in results)
    return labels


# --------------------------------------------------------------------- the official SCLIP code
def load_compare_tool():
    """compare_with_reference.py: its random OpenAI-format weights, converter and checks."""
    return import_file_as_module(
        osp.join(osp.dirname(osp.abspath(__file__)), 'compare_with_reference.py'),
        'silc_tool_compare_with_reference')


def sclip_preset_dataset(config_path):
    """The dataset of an SCLIP preset (``sclip_vit-b16_<dataset>.py``), the only method whose
    official segmentor ``--reference-dir`` times."""
    name = osp.splitext(osp.basename(config_path))[0]
    method, _, dataset = name.partition('_vit-b16_')
    if method != 'sclip' or not dataset:
        raise SystemExit(f'--reference-dir times wangf3014/SCLIP: give an SCLIP preset '
                         f'(configs/zero_shot/sclip/sclip_vit-b16_<dataset>.py), not {name}')
    return dataset


def build_official_sclip(reference_dir, dataset, weights, num_templates, device):
    """SCLIP's ``CLIPForSegmentation`` from a checkout, with the arguments of its
    ``configs/cfg_<dataset>.py``, on ``weights`` (``clip.load`` reads a plain state dict) and
    the first ``num_templates`` templates (the checkout on disk is not changed)."""
    tool = load_compare_tool()
    try:
        reference_dir = tool.check_reference_dir(reference_dir, 'sclip', dataset)
    except tool.ReferenceDirError as error:
        raise SystemExit(str(error))
    sys.path.insert(0, reference_dir)
    tool.reference_runner.truncate_templates(num_templates)
    module = importlib.import_module('clip_segmentor')  # registers only its segmentor
    cfg = Config.fromfile(osp.join(reference_dir, 'configs',
                                   tool.REFERENCE_CONFIGS[dataset])).model.to_dict()
    cfg = {k: v for k, v in cfg.items() if k not in ('type', 'clip_path')}
    cfg['name_path'] = osp.join(reference_dir, cfg['name_path'])  # relative to the checkout
    print(f'official SCLIP: {osp.join(reference_dir, "clip_segmentor.py")} '
          f'(commit {tool.reference_runner.git_commit(reference_dir) or "unknown"}), '
          f'{num_templates} template(s), {cfg}')
    return module.CLIPForSegmentation(clip_path=weights, device=torch.device(device), **cfg).eval()


@torch.no_grad()
def official_predict(segmentor, images):
    """The official segmentor's ``predict``, one image per call as its test loop runs it."""
    labels = []
    for image in images:
        sample = SegDataSample(
            metainfo=dict(img_shape=image.shape[-2:], ori_shape=image.shape[-2:]))
        labels.append(segmentor.predict(image[None], [sample])[0].pred_sem_seg.data)
    return labels


def time_tower(owner, name, watch):
    """Route ``owner.name`` through ``watch`` (the image tower's time inside each path)."""
    setattr(owner, name, watch.wrap(getattr(owner, name)))


def agreement(labels, others):
    return torch.stack([(a == b).float().mean() for a, b in zip(labels, others)]).mean().item()


def time_images(model, args, official=None):
    torch.manual_seed(0)
    images = [torch.randn(3, *args.image_size, device=args.device) for _ in range(args.num_images)]
    text_embeddings, query_to_class = model.text_embeddings()  # built once, as SCLIP does
    tower = Stopwatch(args.device)
    time_tower(model.image_encoder, 'encode_dense', tower)
    paths = {
        'ours': lambda: ours_predict(model, images, args.batch_size),
        'loop': lambda: reference_loop_predict(model, images, text_embeddings, query_to_class)
    }
    if official is not None:
        time_tower(official.net, 'encode_image', tower)
        paths['official'] = lambda: official_predict(official, images)
    seconds, labels, tower_seconds = best_times(
        list(paths.values()), args.repeats, args.device, tower)
    seconds, labels, tower_seconds = (
        dict(zip(paths, values)) for values in (seconds, labels, tower_seconds))
    windows = len(
        sliding_windows(*args.image_size, model.test_cfg['crop_size'], model.test_cfg['stride']))
    print(f'images: {args.num_images} x {args.image_size[0]}x{args.image_size[1]}, {windows} '
          f'windows each (window_batch_size {model.test_cfg["window_batch_size"]}, '
          f'{args.batch_size} image(s) per predict), '
          f'{len(query_to_class)} queries; best of {args.repeats} interleaved passes')
    for name in paths:
        print(f'  {name:8s}: {args.num_images / seconds[name]:.3f} images/s '
              f'({seconds[name]:.2f} s; image tower {tower_seconds[name]:.2f} s = '
              f'{tower_seconds[name] / seconds[name]:.0%})')
    shares = {name: agreement(labels['ours'], labels[name]) for name in paths if name != 'ours'}
    for name, share in shares.items():
        print(f'  speed-up ours / {name}: {seconds[name] / seconds["ours"]:.2f}x; identical '
              f'labels: {share:.4%}')
    print(f'  bound: with our tower time fixed, nothing outside it could make ours more than '
          f'{seconds["loop"] / tower_seconds["ours"]:.2f}x the loop' +
          (f' ({seconds["official"] / tower_seconds["ours"]:.2f}x the official code)'
           if official is not None else ''))
    if min(shares.values()) < 0.999:
        raise RuntimeError('the paths disagree: the benchmark compares different things')
    return dict(seconds=seconds, tower_seconds=tower_seconds, agreement=shares)


def main():
    args = parse_args()
    quiet_library_warnings()
    config = load_config(args.config, args.cfg_options)
    init_default_scope(config.get('default_scope', 'mmseg'))
    if config.model.test_cfg.get('mode') != 'slide':
        raise ValueError('the benchmark compares sliding-window inference; use a slide config')
    official = None
    with tempfile.TemporaryDirectory() as work_dir:
        if args.reference_dir:
            if args.checkpoint:
                raise SystemExit('--reference-dir brings its own random weights: drop '
                                 '--checkpoint')
            dataset = sclip_preset_dataset(args.config)
            tool = load_compare_tool()
            weights = osp.join(work_dir, 'openai_random.pt')
            args.checkpoint = osp.join(work_dir, 'ours.pth')
            tool.convert_for_ours(tool.make_openai_weights(weights, args.arch), args.checkpoint)
            config.merge_from_dict({
                'model.templates':
                get_prompt_templates('imagenet80')[:args.num_templates],
                **tool.tiny_overrides(args.arch, 'sclip')
            })
            official = build_official_sclip(args.reference_dir, dataset, weights,
                                            args.num_templates, args.device)
        model = MODELS.build(config.model).to(args.device).eval()
        if args.checkpoint:
            load_checkpoint(model, args.checkpoint, map_location='cpu')
    # The preset's class-name file where it has one (as the test loop uses it), else the
    # dataset's class names.
    classes = config.model.get('class_names') or dataset_classes(config)
    model.set_vocabulary(classes)
    print(f'config: {args.config}; device {args.device}, {torch.get_num_threads()} threads')
    if args.text_classes != 0:
        vocabulary = build_vocabulary(classes)
        time_text_classifier(model, vocabulary[:args.text_classes or len(vocabulary)],
                             len(vocabulary), args.device)
    if args.num_images:
        time_images(model, args, official)


if __name__ == '__main__':
    main()
