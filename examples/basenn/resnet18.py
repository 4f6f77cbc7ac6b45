"""ResNet18 from Res_Blocks, as in BaseNN's documentation (shape comments for a batch of 2).

Run: python examples/basenn/resnet18.py   (prints the 224x224 model and trains a 64x64 one a step)
"""

import numpy as np

from fastnn.basenn import nn


def resnet18(image_size=224, classes=10, seed=0):
    model = nn("cls")
    model.set_seed(seed)
    model.add("Conv2D", size=(3, 64), kernel_size=(7, 7), stride=2, padding=3,
              activation="ReLU")                                        # (2, 64, 112, 112)
    model.add("BatchNorm2d", size=64)                                   # (2, 64, 112, 112)
    model.add("MaxPool", kernel_size=(3, 3), stride=2, padding=1)       # (2, 64, 56, 56)
    model.add("Res_Block", size=(64, 64), num_blocks=2, stride=1)       # (2, 64, 56, 56)
    model.add("Res_Block", size=(64, 128), num_blocks=2, stride=2)      # (2, 128, 28, 28)
    model.add("Res_Block", size=(128, 256), num_blocks=2, stride=2)     # (2, 256, 14, 14)
    model.add("Res_Block", size=(256, 512), num_blocks=2, stride=2)     # (2, 512, 7, 7)
    k = image_size // 32
    model.add("AvgPool", kernel_size=(k, k))                            # (2, 512)
    model.add("Linear", size=(512, classes), activation="Softmax")      # (2, 10)
    return model


def main(seed=0):
    rng = np.random.default_rng(seed)
    big = resnet18(224)
    x = rng.random((2, 3, 224, 224), dtype=np.float32)
    big.load_dataset(x, np.array([0, 1]))
    big.print_model()
    out = big.inference(x)
    print("224x224 output:", out.shape)

    small = resnet18(64)
    xs = rng.random((4, 3, 64, 64), dtype=np.float32)
    small.load_dataset(xs, np.array([0, 1, 2, 3]))
    small.add(optimizer="SGD")
    hist = small.train(lr=0.01, epochs=1, save_fold="checkpoints/resnet18_ckpt")
    return out.shape, hist


if __name__ == "__main__":
    main()
