"""SigLIP 2 conversion: open_clip ``ViT-*-SigLIP2*`` models with random weights, converted
through siglip2silc (config found from the shapes), give open_clip's image and text embeddings;
ViT-B-16-SigLIP2 at full size, every other release on a width/depth-reduced copy of its own
open_clip config (same trunk, activations, MLP ratio, resolution, MAP head, text pooling and
image/text width ratio). big_vision ``.npz`` arrays are made from the open_clip model by a
mapping written out here (big_vision ``vit.py`` / ``two_towers.py`` parameter names)."""
import copy

import numpy as np
import open_clip
import pytest
import timm
import torch
from mmengine.config import Config

from silc_seg.converters import (MODEL_CONFIGS, SIGLIP2_MODEL_CONFIGS, build_towers,
                                 convert_siglip2, convert_siglip2_weights, fitting_models,
                                 load_siglip2_source, save_state_dict, verify_state_dict)
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path
from silc_seg.utils.checkpoint import CheckpointMismatchError, load_model_checkpoint
from .helpers import TOLERANCE, load_tool, max_diff, perturb, run_tool

# Reduced copies: image width 96 (6 heads), text width 64 (4 heads) or 72 (g-opt: its So400m
# text tower is projected to the image width, 1536 / 1152 = 96 / 72), 2 blocks, 1000 pieces.
SMALL = dict(image=96, image_heads=6, text=64, text_heads=4, depth=2, vocab=1000)


def reduced_open_clip(name):
    """open_clip's own config of ``name`` with smaller widths, depth and vocabulary; the image
    trunk is timm's model of that config with the smaller sizes (open_clip 3.3 passes no size
    arguments to timm, so a small stand-in trunk is replaced)."""
    cfg = open_clip.get_model_config(name)
    vision, text = copy.deepcopy(cfg['vision_cfg']), copy.deepcopy(cfg['text_cfg'])
    trunk_name, vision['timm_model_name'] = vision['timm_model_name'], 'vit_tiny_patch16_224'
    text_width = SMALL['text'] if cfg['embed_dim'] == text['width'] else \
        SMALL['image'] * text['width'] // cfg['embed_dim']
    text.update(
        width=text_width,
        heads=SMALL['text_heads'],
        layers=SMALL['depth'],
        vocab_size=SMALL['vocab'])
    torch.manual_seed(0)
    model = open_clip.create_model(
        name, pretrained=None, vision_cfg=vision, text_cfg=text, embed_dim=SMALL['image'])
    model.visual.trunk = timm.create_model(
        trunk_name,
        pretrained=False,
        num_classes=0,
        global_pool='map',
        embed_dim=SMALL['image'],
        depth=SMALL['depth'],
        num_heads=SMALL['image_heads'])
    model.eval()
    perturb(model)
    return model


def reduced_towers(config, text_width, vocab=SMALL['vocab']):
    """The towers of an arch config with the sizes of :func:`reduced_open_clip` (``vocab``
    text pieces)."""
    cfg = Config.fromfile(get_config_path(config))
    image, text = cfg.image_encoder, cfg.text_encoder
    patch = MODELS.get(image.type).arch_zoo[image.arch]['patch_size'] if isinstance(
        image.arch, str) else image.arch.patch_size
    mlp_ratio = 4.0 if isinstance(image.arch, str) else image.arch.get('mlp_ratio', 4.0)
    image.arch = dict(
        width=SMALL['image'],
        depth=SMALL['depth'],
        num_heads=SMALL['image_heads'],
        patch_size=patch,
        mlp_ratio=mlp_ratio)
    text_arch = MODELS.get(text.type).arch_zoo[text.arch] if isinstance(text.arch, str) else \
        text.arch
    text_arch = dict(
        text_arch,
        width=text_width,
        depth=SMALL['depth'],
        num_heads=SMALL['text_heads'],
        vocab_size=vocab,
        output_dim=SMALL['image'])
    for key in ('vocab_size', 'output_dim'):  # explicit arguments override the arch dict
        text.pop(key, None)
    text.arch = text_arch
    return dict(image_encoder=MODELS.build(image).eval(), text_encoder=MODELS.build(text).eval())


def gelu_kind(act):
    """'tanh' or 'none' for torch's GELU and timm's GELU / GELUTanh."""
    return 'tanh' if type(act).__name__ == 'GELUTanh' else act.approximate


def embeddings_diff(towers, reference, image_size, seed=1):
    torch.manual_seed(seed)
    images = torch.randn(2, 3, image_size, image_size)
    tokens = torch.randint(0, reference.text.token_embedding.num_embeddings, (3, 64))
    image = max_diff(towers['image_encoder'].encode_image(images), reference.encode_image(images))
    text = max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens))
    return image, text


@pytest.mark.slow
@torch.no_grad()
def test_vit_b_16_siglip2_full_size():
    torch.manual_seed(0)
    reference = open_clip.create_model('ViT-B-16-SigLIP2', pretrained=None).eval()
    perturb(reference)
    # No model name: the config is found from the shapes.
    converted, config = convert_siglip2(reference.state_dict())
    assert config == 'configs/_base_/models/siglip2_vit-b-16.py'
    towers = build_towers(config)
    verify_state_dict(converted, towers)
    image_diff, text_diff = embeddings_diff(towers, reference, 224)
    print(f'ViT-B-16-SigLIP2 (full size) max abs diff: image {image_diff:.2e}, '
          f'text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert converted['contrastive_loss.logit_bias'] == reference.logit_bias


@pytest.mark.slow
@torch.no_grad()
def test_tool_converts_a_timm_trunk_and_records_its_config(tmp_path):
    from safetensors.torch import save_file
    torch.manual_seed(0)
    trunk = timm.create_model(
        'vit_base_patch32_siglip_256', pretrained=False, num_classes=0).eval()
    perturb(trunk)
    src = tmp_path / 'model.safetensors'
    save_file(trunk.state_dict(), str(src))
    dst = str(tmp_path / 'siglip2_b32.safetensors')
    lines = run_tool(load_tool('siglip2silc'), [str(src), dst])
    assert 'image tower only' in lines[0]
    assert lines[-1] == 'configs/_base_/models/siglip2_vit-b-32-256.py'
    from safetensors import safe_open
    with safe_open(dst, 'pt') as handle:
        assert handle.metadata()['config'] == lines[-1]
        assert handle.metadata()['model'] == 'ViT-B-32-SigLIP2-256'
    image_cfg = Config.fromfile(get_config_path(lines[-1])).image_encoder
    tower = MODELS.build(
        dict(image_cfg, init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='image_encoder.')))
    tower.init_weights()
    images = torch.randn(1, 3, 256, 256)
    assert max_diff(tower.eval().encode_image(images), trunk(images)) <= TOLERANCE


# One release per architecture, activation and patch size (the other resolutions differ only
# in img_size, checked at full size by test_every_release_is_found_from_its_shapes).
REDUCED = [
    'ViT-B-32-SigLIP2-256', 'ViT-B-16-SigLIP2-512', 'ViT-L-16-SigLIP2-256', 'ViT-L-16-SigLIP2-512',
    'ViT-SO400M-14-SigLIP2-378', 'ViT-SO400M-16-SigLIP2-384', 'ViT-gopt-16-SigLIP2-384'
]


@pytest.mark.slow
@pytest.mark.parametrize('name', REDUCED)
@torch.no_grad()
def test_reduced_release_matches_open_clip(name):
    reference = reduced_open_clip(name)
    # Reduced weights fit no released config: convert without the arch check (the config of
    # each release is found from full-size shapes in test_every_release_is_found_from_its_shapes).
    converted = convert_siglip2_weights(reference.state_dict())
    config = SIGLIP2_MODEL_CONFIGS[name]
    towers = reduced_towers(config, reference.text.token_embedding.weight.shape[1])
    for prefix, module in towers.items():
        module.load_state_dict({
            k[len(prefix) + 1:]: v
            for k, v in converted.items() if k.startswith(prefix + '.')
        })
    image_size = Config.fromfile(get_config_path(config)).image_encoder.img_size
    image_diff, text_diff = embeddings_diff(towers, reference, image_size)
    print(f'{name} (reduced) max abs diff: image {image_diff:.2e}, text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    # GELU and its tanh approximation differ by less than the tolerance here: compare them.
    ours = [towers['image_encoder'].blocks[0].mlp.act, towers['text_encoder'].blocks[0].mlp.act]
    theirs = [
        reference.visual.trunk.blocks[0].mlp.act, reference.text.transformer.resblocks[0].mlp.gelu
    ]
    assert [gelu_kind(a) for a in ours] == [gelu_kind(a) for a in theirs]


def open_clip_to_big_vision(model, naflex=False):
    """big_vision two-tower arrays holding the weights of an open_clip SigLIP 2 model."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    trunk, out = 'visual.trunk.', {}
    heads = model.visual.trunk.attn_pool.num_heads
    text_heads = model.text.transformer.resblocks[0].attn.num_heads

    def dense(dst, src):
        out[dst + '/kernel'], out[dst + '/bias'] = sd[src + '.weight'].T, sd[src + '.bias']

    def norm(dst, src):
        out[dst + '/scale'], out[dst + '/bias'] = sd[src + '.weight'], sd[src + '.bias']

    def heads_in(dst, weight, bias, h):
        out[dst + '/kernel'] = weight.T.reshape(weight.shape[1], h, -1)
        out[dst + '/bias'] = bias.reshape(h, -1)

    def attention(dst, qkv_weight, qkv_bias, proj, h):
        for name, w, b in zip(('query', 'key', 'value'), np.split(qkv_weight, 3),
                              np.split(qkv_bias, 3)):
            heads_in(f'{dst}/{name}', w, b, h)
        out[dst + '/out/kernel'] = sd[proj + '.weight'].T.reshape(h, -1,
                                                                  sd[proj + '.weight'].shape[0])
        out[dst + '/out/bias'] = sd[proj + '.bias']

    conv = sd[trunk + ('embeds.proj.weight' if naflex else 'patch_embed.proj.weight')]
    if naflex:  # Dense over (row, column, channel) patches; a (16, 16, D) table.
        out['img/embedding/kernel'] = conv.T
        out['img/pos_embedding'] = sd[trunk + 'embeds.pos_embed'][0]
        out['img/embedding/bias'] = sd[trunk + 'embeds.proj.bias']
    else:
        out['img/embedding/kernel'] = conv.transpose(2, 3, 1, 0)
        out['img/pos_embedding'] = sd[trunk + 'pos_embed']
        out['img/embedding/bias'] = sd[trunk + 'patch_embed.proj.bias']
    for i in range(len(model.visual.trunk.blocks)):
        src, dst = f'{trunk}blocks.{i}.', f'img/Transformer/encoderblock_{i}/'
        norm(dst + 'LayerNorm_0', src + 'norm1')
        norm(dst + 'LayerNorm_1', src + 'norm2')
        attention(dst + 'MultiHeadDotProductAttention_0', sd[src + 'attn.qkv.weight'],
                  sd[src + 'attn.qkv.bias'], src + 'attn.proj', heads)
        dense(dst + 'MlpBlock_0/Dense_0', src + 'mlp.fc1')
        dense(dst + 'MlpBlock_0/Dense_1', src + 'mlp.fc2')
    norm('img/Transformer/encoder_norm', trunk + 'norm')
    pool, head = trunk + 'attn_pool.', 'img/MAPHead_0/'
    out[head + 'probe'] = sd[pool + 'latent']
    heads_in(head + 'MultiHeadDotProductAttention_0/query', sd[pool + 'q.weight'],
             sd[pool + 'q.bias'], heads)
    for name, w, b in zip(('key', 'value'), np.split(sd[pool + 'kv.weight'], 2),
                          np.split(sd[pool + 'kv.bias'], 2)):
        heads_in(f'{head}MultiHeadDotProductAttention_0/{name}', w, b, heads)
    out[head + 'MultiHeadDotProductAttention_0/out/kernel'] = sd[pool + 'proj.weight'].T.reshape(
        heads, -1, sd[pool + 'proj.weight'].shape[0])
    out[head + 'MultiHeadDotProductAttention_0/out/bias'] = sd[pool + 'proj.bias']
    norm(head + 'LayerNorm_0', pool + 'norm')
    dense(head + 'MlpBlock_0/Dense_0', pool + 'mlp.fc1')
    dense(head + 'MlpBlock_0/Dense_1', pool + 'mlp.fc2')
    out['txt/Embed_0/embedding'] = sd['text.token_embedding.weight']
    out['txt/pos_embedding'] = sd['text.positional_embedding'][None]
    for i in range(len(model.text.transformer.resblocks)):
        src, dst = f'text.transformer.resblocks.{i}.', f'txt/Encoder_0/encoderblock_{i}/'
        norm(dst + 'LayerNorm_0', src + 'ln_1')
        norm(dst + 'LayerNorm_1', src + 'ln_2')
        attention(dst + 'MultiHeadDotProductAttention_0', sd[src + 'attn.in_proj_weight'],
                  sd[src + 'attn.in_proj_bias'], src + 'attn.out_proj', text_heads)
        dense(dst + 'MlpBlock_0/Dense_0', src + 'mlp.c_fc')
        dense(dst + 'MlpBlock_0/Dense_1', src + 'mlp.c_proj')
    norm('txt/Encoder_0/encoder_norm', 'text.ln_final')
    dense('txt/head', 'text.text_projection')
    out['t'], out['b'] = sd['logit_scale'].reshape(1), sd['logit_bias'].reshape(1)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


@pytest.mark.slow
@torch.no_grad()
def test_big_vision_npz_of_a_release(tmp_path):
    name = 'ViT-SO400M-16-SigLIP2-256'
    reference = reduced_open_clip(name)
    path = tmp_path / 'siglip2_so400m16_256.npz'
    np.savez(path, **open_clip_to_big_vision(reference))
    converted = convert_siglip2_weights(load_siglip2_source(str(path)))
    towers = reduced_towers(SIGLIP2_MODEL_CONFIGS[name], SMALL['text'])
    for prefix, module in towers.items():
        module.load_state_dict({
            k[len(prefix) + 1:]: v
            for k, v in converted.items() if k.startswith(prefix + '.')
        })
    image_diff, text_diff = embeddings_diff(towers, reference, 256)
    print(f'{name} (reduced, big_vision npz) max abs diff: image {image_diff:.2e}, '
          f'text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert converted['contrastive_loss.logit_bias'] == reference.logit_bias


def meta_state_dict(name):
    with torch.device('meta'):
        return open_clip.create_model(name, pretrained=None, device='meta').state_dict()


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(SIGLIP2_MODEL_CONFIGS))
def test_every_release_is_found_from_its_shapes(name):
    # Full-size structure (meta tensors: keys and shapes, no data).
    converted, config = convert_siglip2(meta_state_dict(name))
    assert config == SIGLIP2_MODEL_CONFIGS[name]
    assert fitting_models(converted, SIGLIP2_MODEL_CONFIGS) == [name]


@pytest.mark.slow
def test_siglip_1_and_2_mixed_up_name_the_config_that_fits():
    siglip2 = meta_state_dict('ViT-B-16-SigLIP2')
    with pytest.raises(
            ValueError,
            match=r'does not fit the towers of ViT-B-16-SigLIP .*'
            r'fits ViT-B-16-SigLIP2 \(configs/_base_/models/siglip2_vit-b-16\.py\)'):
        convert_siglip2(siglip2, 'ViT-B-16-SigLIP')
    siglip1 = meta_state_dict('ViT-B-16-SigLIP')
    with pytest.raises(
            ValueError,
            match=r'does not fit the towers of ViT-B-16-SigLIP2 .*'
            r'fits ViT-B-16-SigLIP \(configs/_base_/models/siglip_vit-b-16\.py\)'):
        convert_siglip2(siglip1, 'ViT-B-16-SigLIP2')
    with pytest.raises(
            ValueError,
            match=r'not a released SigLIP 2 model: it fits '
            r'ViT-B-16-SigLIP \(configs/_base_/models/siglip_vit-b-16\.py\)'):
        convert_siglip2(siglip1)
    assert MODEL_CONFIGS['ViT-B-16-SigLIP2'] == SIGLIP2_MODEL_CONFIGS['ViT-B-16-SigLIP2']


@pytest.mark.slow
@pytest.mark.parametrize('saved,given', [('ViT-B-16-SigLIP2', 'ViT-B-16-SigLIP'),
                                         ('ViT-B-16-SigLIP', 'ViT-B-16-SigLIP2')])
def test_converted_file_loaded_with_the_other_siglip_config_names_the_config_it_fits(
        tmp_path, saved, given):
    """A converted SigLIP 2 file given to a model of the SigLIP 1 config (tools/test.py,
    init_model: load_model_checkpoint), and the reverse: the vocabularies differ (256k Gemma /
    32k T5 pieces), and the error names the config the file was converted for."""

    def towers(name):
        config = MODEL_CONFIGS[name]
        text = Config.fromfile(get_config_path(config)).text_encoder
        vocab = text.get('vocab_size') or MODELS.get(text.type).arch_zoo[text.arch]['vocab_size']
        return torch.nn.ModuleDict(reduced_towers(config, SMALL['text'], vocab))

    path = str(tmp_path / 'converted.pth')
    # The meta siglip2silc.py / openclip2silc.py write.
    save_state_dict(
        towers(saved).state_dict(), path, meta=dict(model=saved, config=MODEL_CONFIGS[saved]))
    with pytest.raises(CheckpointMismatchError) as error:
        load_model_checkpoint(towers(given), path)
    message = str(error.value)
    assert f'converted for the towers of {MODEL_CONFIGS[saved]} ({saved})' in message
    assert 'text_encoder.token_embedding' in message
    assert MODEL_CONFIGS[saved] == ('configs/_base_/models/siglip2_vit-b-16.py'
                                    if saved.endswith('SigLIP2') else
                                    'configs/_base_/models/siglip_vit-b-16.py')


@pytest.mark.slow
@torch.no_grad()
def test_backbone_loads_converted_weights_through_init_cfg(tmp_path):
    # The plug-in backbone of any mmseg config: the image tower with a Pretrained init_cfg.
    name = 'ViT-L-16-SigLIP2-384'
    reference = reduced_open_clip(name)
    converted = convert_siglip2_weights(reference.state_dict())
    config = SIGLIP2_MODEL_CONFIGS[name]
    path = str(tmp_path / 'siglip2_l16_384.pth')
    # Reduced widths: the file records no tower config (the full-size one would not fit them).
    save_state_dict(converted, path, meta=dict(model=name))
    image_cfg = Config.fromfile(get_config_path(config)).image_encoder
    image_cfg.arch = dict(
        width=SMALL['image'], depth=SMALL['depth'], num_heads=SMALL['image_heads'], patch_size=16)
    backbone = MODELS.build(
        dict(
            image_cfg,
            out_indices=(0, 1),
            init_cfg=dict(type='Pretrained', checkpoint=path, prefix='image_encoder.')))
    backbone.init_weights()
    backbone.eval()
    images = torch.randn(1, 3, 384, 512)
    maps = backbone(images)
    assert [tuple(m.shape) for m in maps] == [(1, SMALL['image'], 24, 32)] * 2
    trunk = reference.visual.trunk
    tokens = trunk.patch_embed(images[:, :, :, :384])  # timm needs the 384 px square
    tokens = trunk.blocks(trunk._pos_embed(tokens))
    expected = trunk.norm(tokens)
    square = backbone(images[:, :, :, :384])[-1].flatten(2).transpose(1, 2)
    assert max_diff(square, expected) <= TOLERANCE
