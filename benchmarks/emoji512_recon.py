"""Reconstruction PSNR/SSIM, optical efficiencies and figures of the 512 px emoji chip (docs/tasks.md).

    python benchmarks/emoji512_recon.py   # after: lightgen train --config benchmarks/configs/emoji-512-chip.toml \
                                           #   --out runs/results/emoji-black-emoji-512-chip-mixture

"""

import json

import torch

from lightgen.data.registry import load_dataset
from lightgen.metrics.image import psnr, ssim
from lightgen.tasks.evaluate import optical_efficiencies
from lightgen.tasks.generate import reconstruct, sample
from lightgen.tasks.images import image_grid, save_png
from lightgen.train.trainer import load_trained

s, cfg = load_trained("runs/results/emoji-black-emoji-512-chip-mixture")
t = load_dataset("emoji-black", split="test", size=512)
recs = torch.cat([reconstruct(s, t.images[i : i + 8]) for i in range(0, len(t.images), 8)])
out = {
    "n_test": len(t.images),
    "reconstruction_psnr_db": psnr(recs, t.images).item(),
    "reconstruction_ssim": ssim(recs, t.images).item(),
}
out.update(optical_efficiencies(s, t.images[:8]))
print(json.dumps(out))
json.dump(
    out, open("runs/results/emoji-black-emoji-512-chip-mixture/eval-recon.json", "w"), indent=1
)
imgs = torch.cat([sample(s, 3, seed=0, component=k)[0] for k in range(4)])
save_png(
    "docs/figures/emoji-512-chip-samples-by-component.png",
    image_grid(torch.nn.functional.avg_pool2d(imgs, 2), 3),
)
idx = [0, 1, 2, 6]
save_png(
    "docs/figures/emoji-512-chip-reconstructions.png",
    image_grid(torch.nn.functional.avg_pool2d(torch.cat([t.images[idx], recs[idx]]), 2), 4),
)
