"""Writes src/bin/convgrad/imagenet_classes.txt: the 1000 ImageNet class names, one a line, in
class-index order, as torchvision's weights metadata gives them.

    python scripts/imagenet_classes.py > src/bin/convgrad/imagenet_classes.txt

Needs torchvision (never needed by the build or the tests).
"""
from torchvision.models import ResNet18_Weights

categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
assert len(categories) == 1000
for name in categories:
    print(name)
