# Zero-shot segmentation on converted OpenAI CLIP ViT-B/16 weights (the towers of
# ../../_base_/towers/openai-clip_vit-b-16.py), shared by the MaskCLIP / SCLIP / ClearCLIP /
# NACLIP presets: each method base (./<method>.py) sets that paper's protocol on top.
# Weights:
#   python tools/model_converters/openclip2silc.py ViT-B-16.pt DST --model ViT-B-16-quickgelu
# What each value reproduces, and from which file: docs/zero_shot_protocols.md.
_base_ = [
    '../../silc/zs_runtime.py', '../../_base_/models/zero_shot_segmentor.py',
    '../../_base_/towers/openai-clip_vit-b-16.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
