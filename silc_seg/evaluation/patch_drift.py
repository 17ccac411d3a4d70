"""How the plain last block's patch embeddings change over demo pretraining.

(``tools/analysis_tools/patch_feature_drift.py``, ``silc_study.py``.)

For each checkpoint (demo towers, ``configs/silc/zs_demo.py``), on the demo segmentation val
images (whole 96 px images, 12 x 12 patches), with the plain last block and with NACLIP's:

- ``patch_acc_<variant>``: zero-shot accuracy of the patches (argmax over the 16 class-text
  embeddings vs each patch's majority label), the per-patch core of zero-shot mIoU;
- ``patch_cls_cos``: mean cosine between a patch embedding and its image's (class-token)
  embedding: how much the patches say what the whole image says;
- ``patch_patch_cos``: mean cosine between two patches of the same image (1: every patch
  carries the same, image-level content);
- ``patch_text_margin``: mean over patches of (cosine to its own class's text embedding) minus
  (cosine to the best other class present in the same image).
"""
from typing import Dict

import torch
import torch.nn.functional as F
from mmengine.config import Config

from silc_seg.models.data_preprocessors.silc_data_preprocessor import CLIP_MEAN, CLIP_STD
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path, torch_load_weights_only
from silc_seg.utils.demo_data import CLASS_NAMES
from .linear_probe import patch_class_histograms


def _labels_per_patch(labels: torch.Tensor, grid: int, num_classes: int) -> torch.Tensor:
    return patch_class_histograms(labels, (grid, grid), num_classes).argmax(-1)


@torch.no_grad()
def drift_metrics(ckpt: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """The metrics of the module docstring for one demo checkpoint, on ``images`` (uint8)
    and their ``labels``."""
    cfg = Config.fromfile(get_config_path('silc/zs_demo.py'))
    towers = {
        name: MODELS.build(cfg.model[name]).eval()
        for name in ('image_encoder', 'text_encoder')
    }
    tokenizer = MODELS.build(cfg.model.tokenizer)
    state = torch_load_weights_only(ckpt)['state_dict']
    for name, tower in towers.items():
        tower.load_state_dict({
            k[len(name) + 1:]: v
            for k, v in state.items() if k.startswith(name + '.')
        })
    text = []
    for class_name in CLASS_NAMES:
        prompts = [t.format(class_name) for t in cfg.model.templates]
        text.append(
            F.normalize(
                F.normalize(towers['text_encoder'].encode_text(tokenizer(prompts)),
                            dim=-1).mean(0),
                dim=-1))
    text = torch.stack(text)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (images.float() - mean) / std
    image = towers['image_encoder']
    cls = F.normalize(image.encode_image(x), dim=-1)
    out = {}
    for variant in ('plain', 'naclip'):
        dense = F.normalize(image.encode_dense(x, variant)['dense'], dim=1)
        n, _, gh, gw = dense.shape
        patch_labels = _labels_per_patch(labels, gh, len(CLASS_NAMES)).view(n, -1)
        patches = dense.flatten(2).transpose(1, 2)  # (N, P, J)
        logits = patches @ text.T
        out[f'patch_acc_{variant}'] = float(
            (logits.argmax(-1) == patch_labels).float().mean() * 100)
        if variant != 'plain':
            continue
        out['patch_cls_cos'] = float((patches * cls[:, None]).sum(-1).mean())
        gram = patches @ patches.transpose(1, 2)
        p = gram.shape[1]
        out['patch_patch_cos'] = float(((gram.sum((1, 2)) - p) / (p * (p - 1))).mean())
        own = logits.gather(-1, patch_labels[..., None])[..., 0]
        present = torch.zeros(n, len(CLASS_NAMES), dtype=torch.bool)
        present.scatter_(1, patch_labels, True)
        others = logits.masked_fill(~present[:, None, :], -2.0)
        others = others.scatter(-1, patch_labels[..., None], -2.0).amax(-1)
        valid = others > -2.0
        out['patch_text_margin'] = float((own - others)[valid].mean())
    return out
