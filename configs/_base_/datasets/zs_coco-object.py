# COCO-Object (GroupViT/TCL protocol): COCO val2017, the 80 thing classes + background (all
# stuff), from instance masks converted to `*_instanceTrainIds.png` semantic maps (0 =
# background, 1..80 = things, 255 = ignore) by GroupViT's convert_dataset/convert_coco_object.py.
_base_ = ['./zs_common.py']
dataset_type = 'BaseSegDataset'
data_root = 'data/coco_stuff164k'
coco_object_classes = ('background', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus',
                       'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
                       'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
                       'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
                       'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
                       'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
                       'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
                       'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
                       'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
                       'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
                       'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
                       'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
                       'hair drier', 'toothbrush')
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.jpg',
        seg_map_suffix='_instanceTrainIds.png',
        # No palette: BaseSegDataset draws a fixed-seed random one for the overlays.
        metainfo=dict(classes=coco_object_classes),
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017')))
