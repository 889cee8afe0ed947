"""A GFPGAN-class 512 px generator for timing only (random weights, never for pictures).

GFPGAN v1.4 is a U-Net encoder down to 8x8 with StyleGAN2-like decoder convolutions back up
to 512 px: about 34 GFLOPs per face in published measurements. This net has the same shape
of work (3x3 convolutions at every scale from 512 down to 16 px and back, 32 to 512 channels)
and about as many multiply-adds, so faces per second on it say what a real 512 px
restoration model costs on the device. Written to ONNX with a free batch axis, input
'input' and output 'output', RGB in [-1, 1] (the gfpgan-1.4 profile's conventions).

Usage (on the GPU machine, where PyTorch is): python3 gfpgan_class.py OUT.onnx
"""
import sys

import torch
from torch import nn

CH = [32, 64, 128, 256, 512, 512]  # 512, 256, 128, 64, 32, 16 px


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2))


class UNet512(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, CH[0], 3, padding=1)
        self.down = nn.ModuleList(block(CH[i], CH[i + 1]) for i in range(len(CH) - 1))
        self.up = nn.ModuleList(block(CH[i + 1] + CH[i], CH[i]) for i in reversed(range(len(CH) - 1)))
        self.head = nn.Conv2d(CH[0], 3, 3, padding=1)

    def forward(self, x):
        h = self.stem(x)
        skips = []
        for d in self.down:
            skips.append(h)
            h = d(h)
            h = nn.functional.avg_pool2d(h, 2)
        for u in self.up:
            h = nn.functional.interpolate(h, scale_factor=2, mode="nearest")
            h = u(torch.cat([h, skips.pop()], 1))
        return torch.tanh(self.head(h))


def main():
    out = sys.argv[1]
    net = UNet512().eval()
    x = torch.zeros(1, 3, 512, 512)
    macs = 0
    def count(m, i, o):
        nonlocal macs
        macs += o.numel() // o.shape[0] * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    print(f"gfpgan-class: {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters, "
          f"{2 * macs / 1e9:.1f} GFLOPs per 512 px face")
    torch.onnx.export(net, x, out, input_names=["input"], output_names=["output"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)


if __name__ == "__main__":
    main()
