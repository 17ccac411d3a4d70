"""DINO / DINOv2 checkpoints -> DINOViT (timm architecture), against the official forward.

Random state dicts in the key layout of the public files (facebookresearch/dino
``vision_transformer.py`` @cb71140, ``dino_vitbase8_pretrain.pth``; facebookresearch/dinov2
``dinov2/models/vision_transformer.py`` @85a2460, ``dinov2_vitb14[_reg4]_pretrain.pth``: key names
and shapes as those model definitions give them with random init) are converted and run through
DINOViT; the expected features are the official ``get_intermediate_layers`` (last block, final
norm, prefix tokens dropped) written out below from the raw tensors: patch convolution, class
token, ``interpolate_pos_encoding`` (bicubic; scale factor ``(grid + 0.1) / M`` or, for DINOv2
with registers, the grid size with antialiasing), registers after the class token, pre-norm
blocks with LayerScale (DINOv2), LayerNorm eps 1e-6, exact GELU.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from silc_seg.converters import DINO_MODELS, convert_dino_state_dict
from silc_seg.registry import MODELS
from silc_seg.utils import import_file_as_module

DIM, DEPTH, HEADS, GRID = 32, 2, 2, 6
# kind -> (timm arch, patch, registers, pos_embed_offset, antialias)
KINDS = {
    'dino': ('vit_base_patch8_224.dino', 8, 0, 0.1, False),
    'dinov2': ('vit_base_patch14_dinov2', 14, 0, 0.1, False),
    'dinov2_reg': ('vit_base_patch14_reg4_dinov2', 14, 4, 0.0, True),
}


def official_state_dict(kind, seed=0):
    """Random weights named and shaped as the official model's ``state_dict()``."""
    _, patch, registers, _, _ = KINDS[kind]
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, std=0.2, mean=0.0):
        return torch.randn(*shape, generator=gen) * std + mean

    sd = {
        'cls_token': rand(1, 1, DIM, std=1.0),
        'pos_embed': rand(1, 1 + GRID * GRID, DIM, std=1.0)
    }
    if registers:
        sd['register_tokens'] = rand(1, registers, DIM, std=1.0)
    if kind.startswith('dinov2'):
        sd['mask_token'] = rand(1, DIM)
    sd['patch_embed.proj.weight'] = rand(DIM, 3, patch, patch, std=0.05)
    sd['patch_embed.proj.bias'] = rand(DIM)
    for i in range(DEPTH):
        b = f'blocks.{i}.'
        sd[b + 'norm1.weight'], sd[b + 'norm1.bias'] = rand(DIM, mean=1.0), rand(DIM)
        sd[b + 'attn.qkv.weight'], sd[b + 'attn.qkv.bias'] = rand(3 * DIM, DIM), rand(3 * DIM)
        sd[b + 'attn.proj.weight'], sd[b + 'attn.proj.bias'] = rand(DIM, DIM), rand(DIM)
        sd[b + 'norm2.weight'], sd[b + 'norm2.bias'] = rand(DIM, mean=1.0), rand(DIM)
        sd[b + 'mlp.fc1.weight'], sd[b + 'mlp.fc1.bias'] = rand(4 * DIM, DIM), rand(4 * DIM)
        sd[b + 'mlp.fc2.weight'], sd[b + 'mlp.fc2.bias'] = rand(DIM, 4 * DIM), rand(DIM)
        if kind.startswith('dinov2'):
            sd[b + 'ls1.gamma'], sd[b + 'ls2.gamma'] = rand(DIM, mean=1.0), rand(DIM, mean=1.0)
    sd['norm.weight'], sd['norm.bias'] = rand(DIM, mean=1.0), rand(DIM)
    return sd


def _ln(x, sd, name):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean)**2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-6) * sd[name + '.weight'] + sd[name + '.bias']


def official_features(sd, x, kind, heads=HEADS, last_qkv=False):
    """``get_intermediate_layers(x)[0]`` of the official model, patch tokens as (B, C, h, w);
    with ``last_qkv`` the last block's ``q, k, v`` (B, heads, N, head_dim), prefix tokens
    first, as ``Attention.forward`` makes them."""
    _, patch, registers, offset, antialias = KINDS[kind]
    batch, _, height, width = x.shape
    t = F.conv2d(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'], stride=patch)
    h, w = t.shape[-2:]
    t = torch.cat([sd['cls_token'].expand(batch, -1, -1), t.flatten(2).transpose(1, 2)], 1)
    pos = sd['pos_embed']
    n = pos.shape[1] - 1
    m = int(math.sqrt(n))
    if not (h * w == n and height == width):
        grid = pos[:, 1:].reshape(1, m, m, DIM).permute(0, 3, 1, 2)
        if offset:
            grid = F.interpolate(
                grid,
                scale_factor=((h + offset) / m, (w + offset) / m),
                mode='bicubic',
                antialias=antialias)
        else:
            grid = F.interpolate(grid, size=(h, w), mode='bicubic', antialias=antialias)
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h * w, DIM)], 1)
    t = t + pos
    if registers:
        t = torch.cat([t[:, :1], sd['register_tokens'].expand(batch, -1, -1), t[:, 1:]], 1)
    head_dim = DIM // heads
    for i in range(DEPTH):
        b = f'blocks.{i}.'
        qkv = _ln(t, sd, b + 'norm1') @ sd[b + 'attn.qkv.weight'].T + sd[b + 'attn.qkv.bias']
        q, k, v = qkv.reshape(batch, -1, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        if last_qkv and i == DEPTH - 1:
            return q, k, v
        attn = (q @ k.transpose(-2, -1) * head_dim**-0.5).softmax(-1)
        o = (attn @ v).transpose(1, 2).reshape(batch, -1, DIM)
        o = o @ sd[b + 'attn.proj.weight'].T + sd[b + 'attn.proj.bias']
        t = t + o * sd.get(b + 'ls1.gamma', 1.0)
        y = _ln(t, sd, b + 'norm2') @ sd[b + 'mlp.fc1.weight'].T + sd[b + 'mlp.fc1.bias']
        y = F.gelu(y) @ sd[b + 'mlp.fc2.weight'].T + sd[b + 'mlp.fc2.bias']
        t = t + y * sd.get(b + 'ls2.gamma', 1.0)
    t = _ln(t, sd, 'norm')
    return t[:, 1 + registers:].transpose(1, 2).reshape(batch, DIM, h, w)


def tiny_dino(kind, seed=0):
    """DINOViT (tiny timm overrides) with converted random official weights."""
    arch, patch, _, offset, antialias = KINDS[kind]
    vfm = MODELS.build(
        dict(
            type='DINOViT',
            arch=arch,
            pos_embed_offset=offset,
            pos_embed_antialias=antialias,
            timm_kwargs=dict(embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                             img_size=GRID * patch))).eval()
    sd = official_state_dict(kind, seed)
    converted = convert_dino_state_dict(sd)
    vfm.load_state_dict(converted, strict=True)
    return vfm, sd


@pytest.mark.parametrize('kind', sorted(KINDS))
@pytest.mark.parametrize('hw', [(6, 6), (5, 7), (9, 8)])
def test_features_match_the_official_forward(kind, hw):
    vfm, sd = tiny_dino(kind)
    patch = KINDS[kind][1]
    torch.manual_seed(1)
    # Partial patches (+3 px) are left out by the patch convolution, as there.
    x = torch.randn(2, 3, hw[0] * patch + 3, hw[1] * patch)
    with torch.no_grad():
        ours = vfm(x)
        expected = official_features(sd, x, kind)
    assert ours.shape == (2, DIM) + hw
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_the_position_resize_modes_differ():
    """The offset (scale-factor) and grid-size resizes differ: the mode matters."""
    vfm, _ = tiny_dino('dinov2')
    offset = vfm.resized_pos_embed((5 * 14, 7 * 14))
    vfm.pos_embed_offset = 0.0
    assert (offset - vfm.resized_pos_embed((5 * 14, 7 * 14))).abs().max() > 1e-3


def test_registers_fold_the_class_position_into_the_class_token():
    sd = official_state_dict('dinov2_reg')
    converted = convert_dino_state_dict(sd, prefix='dense_forward.vfm.')
    torch.testing.assert_close(converted['dense_forward.vfm.vit.cls_token'],
                               sd['cls_token'] + sd['pos_embed'][:, :1])
    assert converted['dense_forward.vfm.vit.pos_embed'].shape == (1, GRID * GRID, DIM)
    assert torch.equal(converted['dense_forward.vfm.vit.reg_token'], sd['register_tokens'])
    assert not any('mask_token' in key for key in converted)


def test_training_checkpoint_and_bad_layouts():
    sd = official_state_dict('dino')
    wrapped = {
        'teacher': {
            f'backbone.{k}': v
            for k, v in sd.items()
        } | {
            'head.mlp.0.weight': torch.zeros(2, 2)
        },
        'epoch': 100
    }
    assert convert_dino_state_dict(wrapped).keys() == convert_dino_state_dict(sd).keys()
    with pytest.raises(KeyError, match='unknown keys'):
        convert_dino_state_dict({**sd, 'blocks.0.mlp.w12.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='missing keys'):
        convert_dino_state_dict({k: v for k, v in sd.items() if k != 'pos_embed'})
    vfm, _ = tiny_dino('dino')
    with pytest.raises(ValueError, match='no whole 8px patch'):
        vfm(torch.randn(1, 3, 7, 64))


@pytest.mark.slow
@pytest.mark.parametrize('model', ['dinov2_vitb14_reg'])  # the B/8 layout: the tests above
def test_tool_converts_full_size_layouts_and_merges_clip(tmp_path, model):
    """dino2silc.py on a full-size random file of the public layout (ViT-B), with --clip."""
    import os.path as osp

    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    tool = import_file_as_module(
        osp.join(root, 'tools/model_converters/dino2silc.py'), 'dino2silc')
    vfm = MODELS.build(dict(type='DINOViT', **DINO_MODELS[model]))
    patch, grid = vfm.patch_size, vfm.stored_grid
    sd = {
        'cls_token': torch.randn(1, 1, 768),
        'pos_embed': torch.randn(1, 1 + grid**2, 768),
        'patch_embed.proj.weight': torch.randn(768, 3, patch, patch),
        'patch_embed.proj.bias': torch.randn(768),
        'norm.weight': torch.randn(768),
        'norm.bias': torch.randn(768)
    }
    for key, value in vfm.vit.blocks.state_dict().items():
        sd[f'blocks.{key}'] = torch.randn_like(value)
    if model.endswith('_reg'):
        sd['register_tokens'], sd['mask_token'] = torch.randn(1, 4, 768), torch.randn(1, 768)
    torch.save(sd, tmp_path / 'src.pth')
    clip = {'image_encoder.proj.weight': torch.randn(4, 4), 'text_encoder.x': torch.randn(2)}
    torch.save(clip, tmp_path / 'clip.pth')
    tool.main([
        str(tmp_path / 'src.pth'),
        str(tmp_path / 'dst.pth'), '--model', model, '--clip',
        str(tmp_path / 'clip.pth')
    ])
    out = torch.load(tmp_path / 'dst.pth', weights_only=True)['state_dict']
    assert torch.equal(out['image_encoder.proj.weight'], clip['image_encoder.proj.weight'])
    expected = set(f'dense_forward.vfm.vit.{k}' for k in vfm.vit.state_dict())
    assert set(out) - set(clip) == expected
    with pytest.raises(KeyError, match='missing'):
        del sd['norm.bias']
        torch.save(sd, tmp_path / 'src.pth')
        tool.main([str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth'), '--model', model])
