# OpenAI CLIP's image normalization on the 0-255 scale (RGB): mean and std of
# (0.48145466, 0.4578275, 0.40821073) and (0.26862954, 0.26130258, 0.27577711) times 255.
# The one definition in the configs: every tower base (towers/*.py) exports the normalization of
# its weights as image_mean / image_std, so task configs (pretraining preprocessors, zero-shot and
# CAT-Seg segmentors) write mean={{_base_.image_mean}}, std={{_base_.image_std}} whatever the
# towers. SILCDataPreprocessor has the same values as its defaults.
# SCLIP / NACLIP / ClearCLIP write them rounded to 3 decimals (mean=[122.771, 116.746, 104.094],
# std=[68.501, 66.632, 70.323]): a difference below 1e-5 of a normalized pixel.
image_mean = [122.7709383, 116.7460125, 104.09373615]
image_std = [68.5005327, 66.6321579, 70.32316305]
