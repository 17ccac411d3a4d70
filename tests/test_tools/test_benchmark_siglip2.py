"""benchmark_step's SigLIP 2 FLOP count of the LocCa decoder against torch's FLOP counter."""
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from silc_seg.registry import MODELS
from silc_seg.utils import import_file_as_module

SCRIPT = Path(__file__).resolve().parents[2] / 'tools/analysis_tools/benchmark_step.py'


def load_script():
    return import_file_as_module(str(SCRIPT), 'benchmark_step')


@pytest.mark.slow  # imports the whole benchmark tool
def test_decoder_flops_match_torch_flop_counter():
    bench = load_script()
    torch.manual_seed(0)
    decoder = MODELS.build(
        dict(
            type='LocCaDecoder',
            vocab_size=50,
            in_channels=24,
            embed_dims=32,
            depth=2,
            num_heads=4,
            max_length=16,
            num_bins=10,
            parallel_prob=0.5))
    batch, memory = 4, 9
    text = torch.zeros(batch, 10, dtype=torch.long)
    text[:, :7] = torch.randint(1, 50, (batch, 7))
    text[0, 5:] = 0  # one shorter caption
    region_text = torch.zeros(batch, 1, 10, dtype=torch.long)
    region_text[:, 0, :3] = torch.randint(1, 50, (batch, 3))
    inputs = dict(
        text=text,
        region_text=region_text,
        region_boxes=torch.rand(batch, 1, 4).sort(-1).values,
        region_valid=(torch.arange(batch) % 2 == 0)[:, None],
        memory_tokens=memory)
    image_tokens = torch.randn(batch, memory, 24)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        decoder.loss(
            image_tokens,
            text,
            inputs['region_text'],
            inputs['region_boxes'],
            inputs['region_valid'],
            generator=torch.Generator().manual_seed(0))
    counted = counter.get_total_flops()
    # The counter sees the linear layers (addmm / mm) but not the fused attention kernel of
    # nn.MultiheadAttention: add its products, QK^T and AV, self (L x L) and cross (L x T).
    tasks = decoder.build_sequences(text, inputs['region_text'], inputs['region_boxes'],
                                    inputs['region_valid'])
    for item in tasks.values():
        num, length = item['sequences'].shape[0], item['sequences'].shape[1] - 1
        counted += num * 2 * (2 * 2 * length * length * 32 + 2 * 2 * length * memory * 32)
    assert abs(bench.decoder_flops(decoder, inputs) - counted) <= 1e-6 * counted
