"""Vocabulary parsing, prompt templates, the zero-shot head and PAMR."""
import pytest
import torch
import torch.nn.functional as F
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

from silc_seg.models.decode_heads import ZeroShotHead
from silc_seg.models.utils import (PAMR, build_vocabulary, flatten_vocabulary,
                                   get_prompt_templates, load_class_names)


def test_class_name_file_with_synonyms(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('person, man,woman\nsky\n')
    vocabulary = load_class_names(str(path))
    assert vocabulary == [['person', 'man', 'woman'], ['sky']]
    assert flatten_vocabulary(vocabulary) == (['person', 'man', 'woman', 'sky'], [0, 0, 0, 1])


@pytest.mark.parametrize('text, message', [('cat\n\ndog\n', 'line 2'), ('cat\n , dog\n', 'line 2'),
                                           ('', 'no class names')])
def test_bad_class_name_file(tmp_path, text, message):
    path = tmp_path / 'names.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_class_names(str(path))


def test_missing_class_name_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        build_vocabulary(str(tmp_path / 'missing.txt'))


def test_prompt_templates():
    imagenet = get_prompt_templates('imagenet80')
    assert len(imagenet) == 80
    assert [t.format('dog') for t in imagenet] == [t('dog') for t in OPENAI_IMAGENET_TEMPLATES]
    assert len(get_prompt_templates('short')) == 7
    assert get_prompt_templates('single') == ['a photo of a {}.']
    with pytest.raises(ValueError, match='exactly one'):
        get_prompt_templates(['a photo'])
    with pytest.raises(KeyError, match='imagenet80'):
        get_prompt_templates('imagenet81')


def test_head_cosine_and_synonyms():
    torch.manual_seed(0)
    head = ZeroShotHead(logit_scale=10.0)
    dense = torch.randn(2, 8, 3, 5)
    text = F.normalize(torch.randn(4, 8), dim=-1)
    logits = head(dense * 7.0, text)
    expected = F.normalize(dense[0, :, 1, 2], dim=0) @ text.T
    torch.testing.assert_close(logits[0, :, 1, 2], expected)
    # Queries 0 and 1 are synonyms of class 0: its probability is the larger of theirs.
    probabilities = head.class_probabilities(logits[0], [0, 0, 1, 2], 3)
    softmax = (logits[0] * 10.0).softmax(0)
    torch.testing.assert_close(probabilities[0], softmax[:2].max(0).values)
    torch.testing.assert_close(probabilities[1:], softmax[2:])
    with pytest.raises(ValueError, match='embedding space'):
        head(dense, text[:, :4])


def test_head_background_rules():
    with pytest.raises(ValueError, match='background_index'):
        ZeroShotHead(prob_thd=0.5)
    head = ZeroShotHead(prob_thd=0.5, background_index=0)
    probabilities = torch.tensor([[0.1, 0.3], [0.9, 0.3], [0.0, 0.4]]).view(3, 1, 2)
    assert head.predict_labels(probabilities).flatten().tolist() == [1, 0]
    # Class 2 covers 1 of 10 foreground pixels: below area_thd=0.2 it is suppressed.
    head = ZeroShotHead(area_thd=0.2, background_index=0)
    probabilities = torch.zeros(3, 1, 10)
    probabilities[1, 0, :9] = 0.8
    probabilities[2, 0, 9] = 0.7
    probabilities[0] = 0.1
    assert head.predict_labels(probabilities).flatten().tolist() == [1] * 9 + [0]


def _naive_pamr(image, masks, num_iter, dilations):
    """Per-pixel loop version of PAMR's definition, as the reference."""
    _, channels, height, width = image.shape
    offsets = [(dy * d, dx * d) for d in dilations for dy in (-1, 0, 1) for dx in (-1, 0, 1)
               if (dy, dx) != (0, 0)]

    def at(tensor, y, x):
        return tensor[0, :, min(max(y, 0), height - 1), min(max(x, 0), width - 1)]

    weights = torch.zeros(len(offsets), height, width)
    for y in range(height):
        for x in range(width):
            # One (unbiased) standard deviation over the 3x3 windows of all dilations together,
            # the centre counted once per dilation (the reference's LocalStDev).
            std = torch.stack([
                at(image, y + dy * d, x + dx * d) for d in dilations for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            ]).std(dim=0)
            logits = []
            for d in dilations:
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        if (dy, dx) != (0, 0):
                            diff = (at(image, y + dy * d, x + dx * d) - image[0, :, y, x]).abs()
                            logits.append((-diff / (1e-8 + 0.1 * std)).mean())
            weights[:, y, x] = torch.stack(logits).softmax(0)
    for _ in range(num_iter):
        new = torch.zeros_like(masks)
        for y in range(height):
            for x in range(width):
                for n, (dy, dx) in enumerate(offsets):
                    new[0, :, y, x] += weights[n, y, x] * at(masks, y + dy, x + dx)
        masks = new
    return masks


@pytest.mark.slow
@pytest.mark.parametrize('dilations,size', [((1, 2), (7, 6)), ((8, 16), (21, 19))])
def test_pamr_matches_definition(dilations, size):
    torch.manual_seed(0)
    image = torch.rand(1, 3, *size)
    masks = torch.rand(1, 2, *size)
    refined = PAMR(num_iter=2, dilations=dilations)(image, masks)
    torch.testing.assert_close(refined, _naive_pamr(image, masks, 2, dilations))


def test_pamr_snaps_scores_to_image_edges():
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8:] = 1.0
    image += 0.01 * torch.rand_like(image)
    # A smooth left-to-right ramp of class scores, blind to the edge at column 8.
    ramp = torch.linspace(1, 0, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    coarse = torch.cat([ramp, 1 - ramp], dim=1)
    refined = PAMR(num_iter=10, dilations=(1, 2))(image, coarse)

    def jump_and_spread(scores):
        score = scores[0, 0]
        return score[:, 7].mean() - score[:, 8].mean(), max(score[:, :8].std(), score[:, 8:].std())

    coarse_jump, coarse_spread = jump_and_spread(coarse)
    refined_jump, refined_spread = jump_and_spread(refined)
    assert refined_jump > 3 * coarse_jump
    assert refined_spread < 0.75 * coarse_spread
