"""Building the datasets' label folders from the official downloads (Pascal SBD/VOC, COCO 2014)."""
