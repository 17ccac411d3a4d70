_base_ = ['./zs_common.py', '../_base_/datasets/zs_cityscapes.py']
