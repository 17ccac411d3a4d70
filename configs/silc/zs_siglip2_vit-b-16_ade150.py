_base_ = ['./zs_siglip2_vit-b-16_common.py', '../_base_/datasets/zs_ade150.py']
