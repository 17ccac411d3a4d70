_base_ = ['./zs_siglip2_vit-b-16-naflex_common.py', '../_base_/datasets/zs_pc59.py']
