"""Tiny image/text towers with the block layout of docs/design.md (fused ``attn.qkv``,
``attn.proj``, class token first), so CAT-Seg can be tested in seconds on CPU."""
import torch
import torch.nn.functional as F
from torch import nn

from silc_seg.registry import MODELS

TOKEN_LENGTH = 16


class TinyAttention(nn.Module):

    def __init__(self, dims, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x, attn_mask=None):
        batch, length, dims = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(batch, length, dims))


class TinyBlock(nn.Module):

    def __init__(self, dims, num_heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dims)
        self.attn = TinyAttention(dims, num_heads)
        self.ln_2 = nn.LayerNorm(dims)
        self.mlp = nn.Sequential(nn.Linear(dims, 2 * dims), nn.GELU(), nn.Linear(2 * dims, dims))

    def forward(self, x, attn_mask=None):
        x = x + self.attn(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


@MODELS.register_module(force=True)
class CATSegTinyViT(nn.Module):
    """ViT with a class token, learned positional embedding and output projection."""

    def __init__(self, width=32, depth=3, num_heads=2, patch_size=4, grid=8, output_dim=16):
        super().__init__()
        self.patch_size = patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size)
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(grid * grid + 1, width) * 0.02)
        self.blocks = nn.ModuleList([TinyBlock(width, num_heads) for _ in range(depth)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, output_dim) * width**-0.5)

    def encode_dense(self, x, variant='plain', return_intermediates=()):
        if variant != 'plain':
            raise ValueError(f'tiny tower has only the plain variant, got {variant!r}')
        patches = self.conv1(x)
        batch, _, height, width = patches.shape
        tokens = patches.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_embedding.expand(batch, 1, -1), tokens], dim=1)
        tokens = tokens + self.pos_embed[:tokens.shape[1]]
        intermediates = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in return_intermediates:
                intermediates.append(tokens[:, 1:].transpose(1, 2).reshape(batch, -1, height,
                                                                           width))
        dense = self.ln_post(tokens[:, 1:]) @ self.proj
        return dict(dense=dense.transpose(1, 2).reshape(batch, -1, height, width),
                    intermediates=intermediates)


@MODELS.register_module(force=True)
class CATSegTinyTextTransformer(nn.Module):
    """Causal text transformer pooled at the last non-padding token, projected."""

    def __init__(self, width=32, depth=2, num_heads=2, vocab_size=256, output_dim=16):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.randn(TOKEN_LENGTH, width) * 0.02)
        self.blocks = nn.ModuleList([TinyBlock(width, num_heads) for _ in range(depth)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, output_dim) * width**-0.5)
        self.register_buffer(
            'causal_mask',
            torch.full((TOKEN_LENGTH, TOKEN_LENGTH), float('-inf')).triu(1),
            persistent=False)

    def forward(self, token_ids):
        x = self.token_embedding(token_ids) + self.positional_embedding
        for block in self.blocks:
            x = block(x, self.causal_mask)
        last = (token_ids > 0).sum(dim=1).clamp(min=1) - 1
        return self.ln_final(x)[torch.arange(x.shape[0]), last] @ self.text_projection


@MODELS.register_module(force=True)
class CATSegTinyTokenizer:
    """Characters -> ids, zero padded to ``TOKEN_LENGTH``."""

    def __call__(self, texts):
        ids = torch.zeros(len(texts), TOKEN_LENGTH, dtype=torch.long)
        for row, text in enumerate(texts):
            codes = [1 + ord(c) % 255 for c in text.lower()[:TOKEN_LENGTH]]
            ids[row, :len(codes)] = torch.tensor(codes)
        return ids


def tiny_catseg_cfg(num_class_slots=8, templates=('a photo of a {}.', ), **overrides):
    """CATSeg config for 32 x 32 inputs: 8 x 8 embeddings, windows of 4, logits at 32 x 32."""
    cfg = dict(
        type='CATSeg',
        image_encoder=dict(type='CATSegTinyViT'),
        text_encoder=dict(type='CATSegTinyTextTransformer'),
        tokenizer=dict(type='CATSegTinyTokenizer'),
        decode_head=dict(
            type='CATSegHead',
            vision_width=32,
            guidance_upsample_dims=(16, 8),
            aggregator=dict(
                text_dims=16,
                num_templates=len(templates),
                embed_dims=32,
                appearance_guidance_dims=16,
                text_guidance_dims=16,
                decoder_dims=(32, 16),
                decoder_guidance_dims=(16, 8),
                decoder_guidance_proj_dims=(8, 4),
                num_layers=2,
                num_heads=2,
                pooling_size=(2, 2),
                window_size=4,
                num_class_slots=num_class_slots)),
        templates=list(templates),
        guidance_layers=(0, 1),
        image_size=(32, 32),
        image_trainable_params=('pos_embed', ),
        text_trainable_params=('positional_embedding', ),
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[122.8, 116.7, 104.1],
            std=[68.5, 66.6, 70.3],
            bgr_to_rgb=True,
            size=(32, 32),
            pad_val=0,
            seg_pad_val=255))
    cfg.update(overrides)
    return cfg
