# PASCAL VOC-20: VOC 2012 val without the background class. A subset of mmseg's VOC classes:
# BaseSegDataset builds the label map (background 0 -> ignored 255, aeroplane..tvmonitor
# 1..20 -> 0..19).
_base_ = ['./zs_voc21.py']
voc20_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
                 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
                 'sheep', 'sofa', 'train', 'tvmonitor')
voc20_palette = [[128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128],
                 [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0],
                 [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128],
                 [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0], [0, 64, 128]]
test_dataloader = dict(dataset=dict(metainfo=dict(classes=voc20_classes, palette=voc20_palette)))
