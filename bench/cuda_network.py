"""Network parity on CUDA: sammoe vs medim (fp32) and sammoe CUDA vs sammoe CPU.

    python bench/cuda_network.py

Prints max abs differences for the full-size image embedding and low-res logits, on the same
random weights and inputs. Needs a CUDA device and the test extra (medim).
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from medim.models.sam_med3d import build_sam3D_vit_b_ori  # noqa: E402

from sammoe_core.model import Sam3D  # noqa: E402
from tests.conftest import randomize_weights  # noqa: E402


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ref = build_sam3D_vit_b_ori()
    randomize_weights(ref, 7)
    ours = Sam3D("sam-med3d-vit-b")
    ours.load_state_dict(ref.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(1, 1, 128, 128, 128, generator=gen)
    pts = torch.randint(0, 128, (1, 3, 3), generator=gen).float()
    lab = torch.tensor([[1, 0, 1]])
    prev = torch.randn(1, 1, 32, 32, 32, generator=gen)
    with torch.no_grad():
        cpu_emb = ours.eval().encode(image)
        cpu_low = ours.decode(cpu_emb, pts, lab, prev)
        ref, ours = ref.cuda().eval(), ours.cuda()
        dev = [t.cuda() for t in (image, pts, lab, prev)]
        emb_ref = ref.image_encoder(dev[0])
        emb = ours.encode(dev[0])
        sp, de = ref.prompt_encoder(points=(dev[1], dev[2]), boxes=None, masks=dev[3])
        low_ref, _ = ref.mask_decoder(
            image_embeddings=emb_ref,
            image_pe=ref.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sp,
            dense_prompt_embeddings=de,
        )
        low = ours.decode(emb_ref, dev[1], dev[2], dev[3])
    scale = emb_ref.abs().max().item()
    print(f"CUDA fp32 (tf32 off), {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"embedding  sammoe vs medim: max|diff| {(emb - emb_ref).abs().max().item():.2e} (scale {scale:.2f})")
    print(
        f"low-res    sammoe vs medim: max|diff| {(low - low_ref).abs().max().item():.2e} "
        f"(scale {low_ref.abs().max().item():.2f})"
    )
    print(f"embedding  sammoe CUDA vs CPU: max|diff| {(emb.cpu() - cpu_emb).abs().max().item():.2e}")
    low_own = ours.decode(emb, dev[1], dev[2], dev[3])
    print(f"low-res    sammoe CUDA vs CPU: max|diff| {(low_own.cpu() - cpu_low).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
