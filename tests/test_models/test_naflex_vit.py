"""NaFlexVisionTransformer against timm's ``naflexvit_base_patch16_siglip`` (random weights,
full size): packed batches of images of different aspect ratios within a patch budget, padding
masks, per-image resized positional tables; the grid search against a brute force."""
import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from mmengine.config import Config

from silc_seg.converters import convert_siglip2, convert_timm_trunk
from silc_seg.models.backbones.naflex_vit import naflex_grid, patchify
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path

CONFIG = 'configs/_base_/models/siglip2_vit-b-16-naflex.py'


@torch.no_grad()
def perturb(model, seed=0):
    # timm zero-initializes biases and sets norms to identity: offsets make a dropped or
    # swapped one visible.
    torch.manual_seed(seed)
    for param in model.parameters():
        if param.dim() <= 1:
            param.add_(0.1 * torch.randn_like(param))


@pytest.fixture(scope='module')
def towers():
    torch.manual_seed(0)
    reference = timm.create_model(
        'naflexvit_base_patch16_siglip', pretrained=False, num_classes=0).eval()
    perturb(reference)
    ours = MODELS.build(Config.fromfile(get_config_path(CONFIG)).image_encoder).eval()
    ours.load_state_dict({
        k[len('image_encoder.'):]: v
        for k, v in convert_timm_trunk(reference.state_dict()).items()
    })
    return reference, ours


def reference_pack(images, patch_size, budget):
    """NaFlex inputs written out independently: resize (antialiased bilinear) to the grid,
    patches flattened (row, column, channel), row-major coordinates, zero padding."""
    patches, coords, valid = [], [], []
    for image in images:
        h, w = naflex_grid(*image.shape[-2:], patch_size, budget)
        resized = F.interpolate(
            image[None],
            size=(h * patch_size, w * patch_size),
            mode='bilinear',
            antialias=True,
            align_corners=False)[0]
        flat = torch.stack([
            resized[:, r * patch_size:(r + 1) * patch_size,
                    c * patch_size:(c + 1) * patch_size].permute(1, 2, 0).flatten()
            for r in range(h) for c in range(w)
        ])
        coord = torch.tensor([(r, c) for r in range(h) for c in range(w)])
        pad = budget - h * w
        patches.append(torch.cat([flat, flat.new_zeros(pad, flat.shape[1])]))
        coords.append(torch.cat([coord, coord.new_zeros(pad, 2)]))
        valid.append(torch.arange(budget) < h * w)
    return dict(
        patches=torch.stack(patches),
        patch_coord=torch.stack(coords),
        patch_valid=torch.stack(valid))


@pytest.mark.slow
@torch.no_grad()
def test_packed_batch_of_aspect_ratios_matches_timm(towers):
    reference, ours = towers
    torch.manual_seed(1)
    images = [torch.randn(3, 100, 300), torch.randn(3, 240, 160), torch.randn(3, 64, 64)]
    packed = ours.pack_images(images, 256)
    expected = reference_pack(images, 16, 256)
    for key in packed:
        torch.testing.assert_close(packed[key], expected[key], rtol=0, atol=1e-6)
    assert packed['patch_valid'].sum(1).tolist() == [243, 247, 256]  # 9x27, 19x13, 16x16
    timm_out = reference(dict(packed))
    in_batch = ours.encode_naflex(**packed)
    diff = (in_batch - timm_out).abs().max().item()
    print(f'NaFlex B/16 vs timm naflexvit_base_patch16_siglip max abs diff: {diff:.2e}')
    assert diff <= 1e-4
    # Padding is masked out: the 9x27 image alone (no padding) gives its embedding in the batch.
    alone = ours.encode_naflex(**{k: v[:1, :243] for k, v in packed.items()})
    torch.testing.assert_close(alone[0], in_batch[0], rtol=0, atol=1e-4)


@pytest.mark.slow
@torch.no_grad()
def test_image_input_resizes_the_table_as_timm(towers):
    reference, ours = towers
    images = torch.randn(1, 3, 160, 224)
    diff = (ours.encode_image(images) - reference(images)).abs().max().item()
    assert diff <= 1e-4
    # The table is resized bilinearly with antialiasing (big_vision, timm 1.0.31).
    table = ours.pos_embed.reshape(1, 16, 16, -1).permute(0, 3, 1, 2)
    expected = F.interpolate(
        table, size=(10, 14), mode='bilinear', align_corners=False,
        antialias=True).flatten(2).transpose(1, 2)
    torch.testing.assert_close(ours.resized_pos_embed((10, 14)), expected)


def brute_force_grid(height, width, patch, budget):
    """The grid of the largest scale whose rounded-up grid fits the budget, scanning the
    scales at which a side gains a patch."""
    best = (1, 1)
    for side, size in ((0, height), (1, width)):
        for n in range(1, budget + 1):
            ratio = n * patch / size  # the largest ratio with n patches on this side
            grid = (max(1, math.ceil(height * ratio / patch - 1e-9)),
                    max(1, math.ceil(width * ratio / patch - 1e-9)))
            if grid[0] * grid[1] <= budget and grid[0] * grid[1] > best[0] * best[1]:
                best = grid
    return best


@pytest.mark.parametrize('size', [(100, 300), (240, 160), (64, 64), (17, 1000), (512, 683)])
@pytest.mark.parametrize('budget', [64, 256, 1024])
def test_grid_within_the_budget(size, budget):
    grid = naflex_grid(*size, 16, budget)
    assert grid[0] * grid[1] <= budget
    assert grid[0] * grid[1] == np.prod(brute_force_grid(*size, 16, budget))


def test_patchify_and_errors():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)
    assert patches.shape == (2, 6, 12)
    torch.testing.assert_close(patches[1, 4], images[1, :, 2:4, 2:4].permute(1, 2, 0).flatten())
    with pytest.raises(ValueError, match='pos_embed_interp'):
        MODELS.build(dict(type='NaFlexVisionTransformer', arch='tiny', pos_embed_interp='area'))
    with pytest.raises(ValueError, match='non-empty'):
        naflex_grid(0, 10, 16, 256)


@pytest.mark.slow
@pytest.mark.parametrize('trunk_name,text_model,config',
                         [('naflexvit_base_patch16_siglip', 'ViT-B-16-SigLIP2', CONFIG),
                          ('naflexvit_so400m_patch16_siglip', 'ViT-SO400M-16-SigLIP2-256',
                           'configs/_base_/models/siglip2_vit-so400m-16-naflex.py')])
def test_naflex_checkpoints_find_the_naflex_config(trunk_name, text_model, config):
    # open_clip's layout (visual.trunk.embeds.*) at full size, meta tensors: keys and shapes.
    with torch.device('meta'):
        import open_clip
        state_dict = {
            k: v
            for k, v in open_clip.create_model(text_model, pretrained=None,
                                               device='meta').state_dict().items()
            if not k.startswith('visual.')
        }
        trunk = timm.create_model(trunk_name, num_classes=0)
    state_dict.update({f'visual.trunk.{k}': v for k, v in trunk.state_dict().items()})
    assert convert_siglip2(state_dict)[1] == config
    # Same shapes as the fixed 256 px towers, which the error names the other way round.
    fixed = text_model if text_model.endswith('-256') else text_model + '-256'
    with pytest.raises(
            ValueError,
            match=rf'NaFlex checkpoint does not fit the towers of '
            rf'{fixed} .* use --model {fixed.replace("-256", "")}-naflex'):
        convert_siglip2(state_dict, fixed)
