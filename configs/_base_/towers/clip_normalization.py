# OpenAI CLIP's image normalization on the 0-255 scale (RGB): (0.48145466, 0.4578275, 0.40821073)
# and (0.26862954, 0.26130258, 0.27577711) times 255, the one definition in the configs. Every
# tower base exports the normalization of its weights as image_mean / image_std, so task configs
# write mean={{_base_.image_mean}}, std={{_base_.image_std}} whatever the towers.
image_mean = [122.7709383, 116.7460125, 104.09373615]
image_std = [68.5005327, 66.6321579, 70.32316305]
