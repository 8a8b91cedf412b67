"""COCO: the 17-keypoint layout, reading COCO side files, keypoint AP with pycocotools."""
