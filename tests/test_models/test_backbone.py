"""SILCVisionTransformer: backbone contract, positional embedding resizing, freezing,
activation checkpointing, dense encoding and use inside an MMSeg config."""
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.registry import MODELS
from silc_seg.utils import CheckpointMismatchError


def small_vit(**kwargs):
    torch.manual_seed(0)
    cfg = dict(arch=dict(width=32, depth=4, num_heads=2, patch_size=8), img_size=32, output_dim=16)
    cfg.update(kwargs)
    return SILCVisionTransformer(**cfg).eval()


def test_arch_presets_and_overrides():
    vit = SILCVisionTransformer(arch='tiny', output_dim=64)
    assert (vit.width, vit.depth, vit.num_heads, vit.patch_size) == (192, 6, 3, 16)
    assert len(vit.blocks) == 6 and vit.output_dim == 64
    vit = SILCVisionTransformer(arch='tiny', depth=2, patch_size=8, img_size=32)
    assert len(vit.blocks) == 2 and vit.pos_embed.shape == (1, 1 + 16, 192)
    no_proj = SILCVisionTransformer(arch='tiny', depth=1, output_dim=None)
    assert isinstance(no_proj.proj, torch.nn.Identity) and no_proj.output_dim == 192
    for key, spec in SILCVisionTransformer.arch_zoo.items():
        assert spec['width'] % spec['num_heads'] == 0, key
    with pytest.raises(ValueError, match='unknown arch'):
        SILCVisionTransformer(arch='huge')
    with pytest.raises(ValueError, match='custom arch needs'):
        SILCVisionTransformer(arch=dict(width=32))
    with pytest.raises(ValueError, match='unknown arch keys'):
        SILCVisionTransformer(arch=dict(width=32, depth=1, num_heads=2, embed_dims=32))
    with pytest.raises(ValueError, match='class_token'):
        SILCVisionTransformer(arch='tiny', class_token=False, pool_type='cls')
    with pytest.raises(ValueError, match='out of range'):
        SILCVisionTransformer(arch='tiny', out_indices=(6, ))


def test_forward_returns_maps_for_out_indices():
    vit = small_vit(out_indices=(0, 1, -2, -1))
    x = torch.randn(2, 3, 32, 48)
    outs = vit(x)
    assert isinstance(outs, tuple) and len(outs) == 4
    for out in outs:
        assert out.shape == (2, 32, 4, 6)
    # The maps are the patch tokens after each block; the last one after ln_post.
    tokens, hw = vit.embed(x)
    for index, block in enumerate(vit.blocks):
        tokens = block(tokens)
        expected = vit.ln_post(tokens) if index == 3 else tokens
        expected = expected[:, 1:].transpose(1, 2).reshape(2, 32, *hw)
        torch.testing.assert_close(outs[index], expected)
    raw_last = small_vit(out_indices=-1, final_norm=False)(x)[0]
    assert not torch.allclose(raw_last, outs[-1])


def test_pos_embed_bicubic_resize_at_non_square_sizes():
    vit = small_vit()
    x = torch.randn(1, 3, 24, 56)  # 3 x 7 patches from a 4 x 4 grid
    tokens, hw = vit.embed(x)
    assert hw == (3, 7) and tokens.shape == (1, 1 + 21, 32)
    grid = vit.pos_embed[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(3, 7), mode='bicubic', align_corners=False)
    expected_pos = torch.cat([vit.pos_embed[:, :1], resized.flatten(2).transpose(1, 2)], 1)
    patches = vit.patch_embed.projection(x).flatten(2).transpose(1, 2)
    expected = torch.cat([vit.cls_token, patches], 1) + expected_pos
    torch.testing.assert_close(tokens, expected)
    # At the training size the stored embedding is used as is.
    tokens, _ = vit.embed(torch.zeros(1, 3, 32, 32))
    patches = vit.patch_embed.projection(torch.zeros(1, 3, 32, 32)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens, torch.cat([vit.cls_token, patches], 1) + vit.pos_embed)
    assert vit.encode_image(torch.randn(2, 3, 40, 16)).shape == (2, 16)
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        vit.encode_image(torch.randn(3, 32, 32))


def reference_interpolate_pos_encoding(pos_embed, grid_h, grid_w):
    """The OpenAI-CLIP-based references' resize (SCLIP/NACLIP ``clip/model.py``,
    ClearCLIP ``open_clip/transformer.py``): bicubic with scale factors (grid + 0.1) / sqrt(N)."""
    pos = pos_embed[0]
    n = pos.shape[0] - 1
    side = int(n**0.5)
    patch = pos[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch, scale_factor=((grid_h + 0.1) / side, (grid_w + 0.1) / side), mode='bicubic')
    assert patch.shape[-2:] == (grid_h, grid_w)
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
    return torch.cat([pos[:1].unsqueeze(0), patch], dim=1)


@pytest.mark.parametrize('size', [(24, 56), (48, 40), (56, 56)])
def test_pos_embed_scale_factor_resize_is_the_references(size):
    vit = small_vit(pos_embed_resize='scale_factor')
    x = torch.randn(1, 3, *size)
    grid = (size[0] // 8, size[1] // 8)
    tokens, hw = vit.embed(x)
    assert hw == grid
    expected_pos = reference_interpolate_pos_encoding(vit.pos_embed, *grid)
    patches = vit.patch_embed.projection(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens, torch.cat([vit.cls_token, patches], 1) + expected_pos)
    # It is not the resize to a size: the two options differ away from the training grid.
    by_size = small_vit(pos_embed_resize='size')
    assert not torch.allclose(by_size.resized_pos_embed(grid), vit.resized_pos_embed(grid))
    # At the training grid both use the stored embedding as is.
    torch.testing.assert_close(vit.resized_pos_embed((4, 4)), vit.pos_embed)
    with pytest.raises(ValueError, match='pos_embed_resize'):
        small_vit(pos_embed_resize='nearest')


def test_sizes_not_multiple_of_patch_are_zero_padded():
    vit = small_vit(out_indices=(1, 3))
    x = torch.randn(2, 3, 35, 42)
    padded = F.pad(x, (0, 48 - 42, 0, 40 - 35))
    for out, expected in zip(vit(x), vit(padded)):
        assert out.shape == (2, 32, 5, 6)
        torch.testing.assert_close(out, expected)
    torch.testing.assert_close(vit.encode_image(x), vit.encode_image(padded))
    assert vit.encode_dense(torch.randn(1, 3, 5, 5))['dense'].shape == (1, 16, 1, 1)


def test_checkpoint_pos_embed_is_resized_on_load():
    source = small_vit()
    target = small_vit(img_size=48)
    target.load_state_dict(source.state_dict())
    grid = source.pos_embed[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(6, 6), mode='bicubic', align_corners=False)
    torch.testing.assert_close(target.pos_embed[:, 1:], resized.flatten(2).transpose(1, 2))
    # Same resizing as at run time: both towers agree on a 48px image.
    x = torch.randn(1, 3, 48, 48)
    torch.testing.assert_close(
        target.encode_image(x), source.encode_image(x), atol=1e-5, rtol=1e-5)


def test_frozen_stages():
    vit = small_vit(frozen_stages=2)
    vit.train()
    frozen = {name for name, p in vit.named_parameters() if not p.requires_grad}
    assert {'pos_embed', 'cls_token', 'patch_embed.projection.weight'} <= frozen
    assert all(not p.requires_grad for b in vit.blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for b in vit.blocks[2:] for p in b.parameters())
    assert vit.ln_post.weight.requires_grad and vit.proj.weight.requires_grad
    assert not vit.blocks[1].training and vit.blocks[2].training

    vit = small_vit(frozen_stages=4, pool_type='map', class_token=False)
    vit.train()
    assert all(not p.requires_grad for p in vit.parameters())
    assert all(p.requires_grad for p in small_vit().parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        small_vit(frozen_stages=5)


@pytest.mark.slow
def test_with_cp_gives_identical_gradients():
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for with_cp in (False, True):
        vit = small_vit(with_cp=with_cp, out_indices=(1, 3)).train()
        loss = sum(o.square().mean() for o in vit(x)) + vit.encode_image(x).square().mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in vit.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


@pytest.mark.parametrize('pool_type,class_token', [('cls', True), ('gap', True), ('map', False)])
def test_encode_dense(pool_type, class_token):
    vit = small_vit(pool_type=pool_type, class_token=class_token)
    x = torch.randn(2, 3, 40, 24)
    out = vit.encode_dense(x, return_intermediates=(1, -1))
    assert out['dense'].shape == (2, 16, 5, 3)
    assert [m.shape for m in out['intermediates']] == [(2, 32, 5, 3)] * 2
    maps = vit.__class__.forward(
        small_vit(
            pool_type=pool_type, class_token=class_token, out_indices=(1, 3), final_norm=False), x)
    torch.testing.assert_close(out['intermediates'][0], maps[0])
    torch.testing.assert_close(out['intermediates'][1], maps[1])
    # Each patch goes through ln_post, the pooling's per-token path and the projection.
    patches = maps[1].flatten(2).transpose(1, 2)
    expected = vit.ln_post(patches)
    if pool_type == 'map':
        pool = vit.attn_pool
        values = expected @ pool.kv.weight[32:].T + pool.kv.bias[32:]
        expected = pool.proj(values)
        expected = expected + pool.mlp(pool.norm(expected))
    expected = vit.proj(expected).transpose(1, 2).reshape(2, 16, 5, 3)
    torch.testing.assert_close(out['dense'], expected)
    if pool_type == 'gap':
        # Average pooling commutes with the linear projection.
        torch.testing.assert_close(out['dense'].mean((2, 3)), vit.encode_image(x))
    with pytest.raises(ValueError, match='unknown dense variant'):
        vit.encode_dense(x, variant='nonexistent')


def test_map_pool_matches_timm_attention_pool():
    from timm.layers import AttentionPoolLatent as timm_pool
    vit = small_vit(pool_type='map', class_token=False, output_dim=None, norm_eps=1e-6)
    reference = timm_pool(
        32, num_heads=2, mlp_ratio=4.0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()
    reference.load_state_dict(vit.attn_pool.state_dict())
    tokens = torch.randn(3, 10, 32)
    torch.testing.assert_close(vit.attn_pool(tokens), reference(tokens))


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_pretrained_init_cfg_with_prefix(tmp_path, suffix):
    source = small_vit()
    with torch.no_grad():
        for param in source.parameters():  # differ from the freshly built tower
            param.add_(torch.randn_like(param))
    state_dict = {f'image_encoder.{k}': v for k, v in source.state_dict().items()}
    state_dict['text_encoder.token_embedding.weight'] = torch.zeros(3, 2)
    path = tmp_path / f'silc{suffix}'
    if suffix == '.safetensors':
        from safetensors.torch import save_file
        save_file(state_dict, str(path))
    else:
        torch.save({'state_dict': state_dict}, path)
    vit = small_vit(
        init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='image_encoder.'))
    torch.manual_seed(1)
    vit.init_weights()
    for name, value in source.state_dict().items():
        torch.testing.assert_close(vit.state_dict()[name], value, msg=name)
    # At another training size the positional embedding is resized while loading.
    larger = small_vit(
        img_size=48,
        init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='image_encoder.'))
    larger.init_weights()
    x = torch.randn(1, 3, 48, 48)
    torch.testing.assert_close(
        larger.encode_image(x), source.encode_image(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='model.pretrained=None'):
        small_vit(pretrained='pretrain/vit_base_patch16_224.pth')


def test_pretrained_init_cfg_refuses_other_shapes(tmp_path):
    """MMEngine's PretrainedInit loads with strict=False and only logs a tensor of another shape;
    the towers load their Pretrained init_cfg through the checked loader instead."""
    wide = small_vit(output_dim=24)
    torch.save({'state_dict': {
        f'image_encoder.{k}': v
        for k, v in wide.state_dict().items()
    }}, tmp_path / 'wide.pth')
    vit = small_vit(
        init_cfg=dict(
            type='Pretrained', checkpoint=str(tmp_path / 'wide.pth'), prefix='image_encoder.'))
    shapes = r'proj.weight \(24, 32\) in the checkpoint vs \(16, 32\) in the model'
    with pytest.raises(CheckpointMismatchError, match=shapes):
        vit.init_weights()
    with pytest.raises(CheckpointMismatchError, match="no weights under 'text_encoder.'"):
        small_vit(
            init_cfg=dict(
                type='Pretrained', checkpoint=str(tmp_path / 'wide.pth'),
                prefix='text_encoder.')).init_weights()


@pytest.mark.slow
def test_inside_mmseg_upernet_config(tmp_path):
    cfg_file = tmp_path / 'upernet_silc_vit.py'
    cfg_file.write_text('''
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py']
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(
        _delete_=True,
        type='SILCVisionTransformer',
        arch=dict(width=32, depth=4, num_heads=2, patch_size=8),
        img_size=64,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1),
    neck=dict(in_channels=[32] * 4, out_channels=32),
    decode_head=dict(in_channels=[32] * 4, channels=32, num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=32, channels=16, num_classes=5, norm_cfg=norm_cfg))
''')
    from mmengine.structures import PixelData
    from mmengine.utils import import_modules_from_strings
    from mmseg.registry import MODELS as MMSEG_MODELS
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(str(cfg_file))
    import_modules_from_strings(**cfg.custom_imports)
    torch.manual_seed(0)
    model = MMSEG_MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    assert isinstance(model.backbone, SILCVisionTransformer)
    samples = []
    for _ in range(2):
        sample = SegDataSample(
            metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64), ori_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 64, 64)))
        samples.append(sample)
    losses = model(torch.randn(2, 3, 64, 64), samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.backbone.pos_embed.grad is not None


def test_registry_build():
    # Registered in mmseg's own registry (what `custom_imports` relies on), and a config dict
    # builds the same network as the constructor with the same arguments.
    from mmseg.registry import MODELS as MMSEG_MODELS
    assert MMSEG_MODELS.get('SILCVisionTransformer') is SILCVisionTransformer
    torch.manual_seed(0)
    vit = MODELS.build(dict(type='SILCVisionTransformer', arch='tiny', depth=1, img_size=32))
    torch.manual_seed(0)
    direct = SILCVisionTransformer(arch='tiny', depth=1, img_size=32)
    assert vit.state_dict().keys() == direct.state_dict().keys()
    for key, value in direct.state_dict().items():
        torch.testing.assert_close(vit.state_dict()[key], value, rtol=0, atol=0, msg=key)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(vit.eval()(x), direct.eval()(x))
