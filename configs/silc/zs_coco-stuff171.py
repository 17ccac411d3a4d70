_base_ = ['./zs_silc_vit-b16_common.py', '../_base_/datasets/zs_coco-stuff171.py']

