_base_ = ['./zs_common.py', '../_base_/datasets/zs_pc59.py']
