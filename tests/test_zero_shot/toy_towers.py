"""Test-only towers implementing the tower contracts of docs/design.md with a few weights, so the
segmentor can be tested independently of (and much faster than) the real towers."""
import zlib

import torch
import torch.nn.functional as F
from torch import nn

from tests.registry import TEST_MODELS

TOKEN_LENGTH = 24


@TEST_MODELS.register_module()
class ToyWordTokenizer:
    """Words (or, with ``whole_text``, the whole text as one token) -> stable hashed ids in
    [1, vocab_size) (0 pads), ``(N, TOKEN_LENGTH)``."""

    def __init__(self, vocab_size=4096, whole_text=False):
        self.vocab_size = vocab_size
        self.whole_text = whole_text

    def __call__(self, texts):
        ids = torch.zeros(len(texts), TOKEN_LENGTH, dtype=torch.long)
        for row, text in enumerate(texts):
            text = text.lower()
            words = [text] if self.whole_text else text.replace('.', ' ').split()
            codes = [1 + zlib.crc32(w.encode()) % (self.vocab_size - 1) for w in words]
            codes = codes[:TOKEN_LENGTH]
            ids[row, :len(codes)] = torch.tensor(codes, dtype=torch.long)
        return ids


@TEST_MODELS.register_module()
class ToyTextEncoder(nn.Module):
    """Mean of word embeddings (random, so distinct words are nearly orthogonal in high
    dimension); counts its forward calls."""

    def __init__(self, embed_dim=16, vocab_size=4096):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.num_calls = 0

    def forward(self, token_ids):
        self.num_calls += 1
        mask = (token_ids > 0).float().unsqueeze(-1)
        return (self.token_embedding(token_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)


@TEST_MODELS.register_module()
class ToyImageEncoder(nn.Module):
    """Patch embedding + a 3x3 conv mixing neighbouring patches (so windows matter)."""

    def __init__(self, embed_dim=16, patch_size=4):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(3, embed_dim, patch_size, patch_size)
        self.mix = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.num_images = 0

    def encode_dense(self, x, variant='plain', return_intermediates=()):
        self.num_images += x.shape[0]
        return dict(dense=self.mix(self.patch_embed(x)), intermediates=[])


@TEST_MODELS.register_module()
class OracleImageEncoder(nn.Module):
    """Knows the answer: maps each patch's mean colour to the nearest palette colour and outputs
    the stored embedding of that class. With ``class_embeddings`` set to the text embeddings of
    the vocabulary (through the checkpoint), its segmentation is perfect.

    Args:
        palette (list): RGB colour of each class, as seen by the tower (mean 0, std 1 inputs).
        embed_dim (int): embedding size.
        patch_size (int): patch size.
    """

    def __init__(self, palette, embed_dim=16, patch_size=16):
        super().__init__()
        self.patch_size = patch_size
        self.register_buffer(
            'palette', torch.tensor(palette, dtype=torch.float32), persistent=False)
        self.class_embeddings = nn.Parameter(torch.zeros(len(palette), embed_dim))

    def encode_dense(self, x, variant='plain', return_intermediates=()):
        colours = F.avg_pool2d(x, self.patch_size)  # (B, 3, h, w)
        distances = torch.cdist(colours.permute(0, 2, 3, 1).flatten(1, 2), self.palette[None])
        labels = distances.argmin(-1).view(x.shape[0], *colours.shape[-2:])
        dense = self.class_embeddings[labels].permute(0, 3, 1, 2)
        return dict(dense=dense, intermediates=[])
