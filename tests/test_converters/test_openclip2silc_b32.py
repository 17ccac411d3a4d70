"""openclip2silc on OpenAI-style ViT-B-32 (QuickGELU) towers: a second patch size, arch preset
and activation through the command-line tool."""
import open_clip
import pytest
import torch

from .helpers import TOLERANCE, convert_with_tool, max_diff


@pytest.mark.slow
@torch.no_grad()
def test_vit_b_32_quickgelu(tmp_path):
    reference, towers, state_dict, config = convert_with_tool(tmp_path, 'ViT-B-32-quickgelu',
                                                              'vit-b-32.pth')
    assert config == 'configs/_base_/models/openclip_vit-b-32-quickgelu.py'
    torch.manual_seed(1)
    images = torch.randn(2, 3, 224, 224)
    tokens = open_clip.tokenize(['a photo of a dog', 'an aerial view of a harbour'])
    image_diff = max_diff(towers['image_encoder'].encode_image(images),
                          reference.encode_image(images))
    text_diff = max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens))
    print(f'ViT-B-32-quickgelu max abs diff: image {image_diff:.2e}, text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    # Unlike OpenCLIP, any input size works: the positional embedding is resized (bicubic).
    assert towers['image_encoder'].encode_image(torch.randn(1, 3, 160, 256)).shape == (1, 512)
