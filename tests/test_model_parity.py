"""Numerical parity of sammoe's network with the official model code (medim, test-only oracle).

Both models get the same random weights; inputs are fresh each run. Tolerance: max abs diff
<= 1e-4 relative to the output's scale (max |value|, at least 1), in fp32.
"""

from __future__ import annotations

import pytest
import torch
from medim.models import sam_med3d  # noqa: E402  (test dependency: the official model code)

from sammoe_core.model import Sam3D, SamConfig
from tests.conftest import randomize_weights

TOL = 1e-4

# medim lets the encoder, prompt width and input size vary; its decoder is fixed (8 heads, MLP 2048).
REDUCED = dict(image_size=64, encoder_dim=96, encoder_depth=3, encoder_heads=4, global_attn_indexes=(1,), prompt_dim=96)


def _pair(seed: int, full: bool):
    if full:
        ref = sam_med3d.build_sam3D_vit_b_ori()
        cfg: SamConfig | str = "sam-med3d-vit-b"
    else:
        ref = sam_med3d.build_sam3D_vit_b_ori(
            encoder_embed_dim=REDUCED["encoder_dim"],
            encoder_depth=REDUCED["encoder_depth"],
            encoder_num_heads=REDUCED["encoder_heads"],
            encoder_global_attn_indexes=list(REDUCED["global_attn_indexes"]),
            prompt_embed_dim=REDUCED["prompt_dim"],
            image_size=REDUCED["image_size"],
        )
        cfg = SamConfig(name="reduced-medim", **REDUCED)
    randomize_weights(ref, seed)
    ours = Sam3D(cfg)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref.eval(), ours.eval()


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
    scale = max(1.0, b.abs().max().item())
    diff = (a - b).abs().max().item()
    assert diff <= TOL * scale, f"{what}: max abs diff {diff:.3g} > {TOL} x scale {scale:.3g}"


def _check_all(ref, ours, seed: int, batch: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    s = ours.config.image_size
    low = ours.config.low_res_size
    image = torch.randn(batch, 1, s, s, s, generator=gen)
    with torch.no_grad():
        emb_ref = ref.image_encoder(image)
        emb = ours.encode(image)
        _close(emb, emb_ref, "image embedding")
        pe_ref = ref.prompt_encoder.get_dense_pe()
        _close(ours.prompt_encoder.dense_pe(), pe_ref, "dense positional encoding")
        for n_clicks in (1, 3):
            pts = torch.randint(0, s, (batch, n_clicks, 3), generator=gen).float()
            lab = torch.randint(0, 2, (batch, n_clicks), generator=gen)
            prev = 3 * torch.randn(batch, 1, low, low, low, generator=gen)
            sp_ref, de_ref = ref.prompt_encoder(points=(pts, lab), boxes=None, masks=prev)
            sp, de = ours.embed_prompts(pts, lab, prev)
            _close(sp, sp_ref, f"sparse prompt embedding, {n_clicks} clicks")
            _close(de, de_ref, f"dense prompt embedding, {n_clicks} clicks")
            low_ref, _ = ref.mask_decoder(
                image_embeddings=emb_ref,
                image_pe=pe_ref,
                sparse_prompt_embeddings=sp_ref,
                dense_prompt_embeddings=de_ref,
                multimask_output=False,
            )
            low_res = ours.decode(emb_ref, pts, lab, prev)
            _close(low_res, low_ref, f"low-res logits, {n_clicks} clicks + mask prompt")
            up_ref = torch.nn.functional.interpolate(low_ref, size=(s, s, s), mode="trilinear", align_corners=False)
            _close(ours.upsample(low_res), up_ref, f"upsampled logits, {n_clicks} clicks")
            flipped = ((ours.upsample(low_res) > 0) != (up_ref > 0)).float().mean().item()
            assert flipped < 1e-4, f"binary mask differs on {flipped:.2%} of voxels"
        # The official first click: an all-zero mask prompt, which decode() uses by default.
        zero = torch.zeros(batch, 1, low, low, low)
        sp_ref, de_ref = ref.prompt_encoder(points=(pts, lab), boxes=None, masks=zero)
        low_ref, _ = ref.mask_decoder(
            image_embeddings=emb_ref,
            image_pe=pe_ref,
            sparse_prompt_embeddings=sp_ref,
            dense_prompt_embeddings=de_ref,
        )
        _close(ours.decode(emb_ref, pts, lab), low_ref, "first click (zero mask prompt)")
        # no_mask_embed path (never used officially, still part of the checkpoint)
        _, de_ref = ref.prompt_encoder(points=(pts, lab), boxes=None, masks=None)
        _close(ours.prompt_encoder(pts, lab, None, None)[1], de_ref, "no-mask dense embedding")


def test_reduced_model_matches_medim(fresh_seed):
    ref, ours = _pair(fresh_seed, full=False)
    _check_all(ref, ours, fresh_seed, batch=2)


def test_literal_padded_mode_matches_exact_and_medim(fresh_seed):
    ref, ours = _pair(fresh_seed, full=False)
    image = torch.randn(1, 1, 64, 64, 64)
    with torch.no_grad():
        exact = ours.encode(image)
        ours.set_attention_mode("padded")
        padded = ours.encode(image)
        _close(padded, ref.image_encoder(image), "padded-literal embedding vs medim")
    _close(exact, padded, "exact shortcut vs literal padded window")


@pytest.mark.slow
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_full_size_model_matches_medim(part, fresh_seed):
    """The official vit_b_ori shape (100.5 M parameters, 324 tensors)."""
    ref, ours = _pair(fresh_seed, full=True)
    assert len(ours.state_dict()) == 324
    assert sum(p.numel() for p in ours.parameters()) == 100_509_232
    gen = torch.Generator().manual_seed(fresh_seed)
    with torch.no_grad():
        if part == "encoder":
            image = torch.randn(1, 1, 128, 128, 128, generator=gen)
            _close(ours.encode(image), ref.image_encoder(image), "full image embedding")
        else:
            emb = torch.randn(1, 384, 8, 8, 8, generator=gen)
            pts = torch.randint(0, 128, (1, 3, 3), generator=gen).float()
            lab = torch.tensor([[1, 0, 1]])
            prev = torch.randn(1, 1, 32, 32, 32, generator=gen)
            sp, de = ref.prompt_encoder(points=(pts, lab), boxes=None, masks=prev)
            low_ref, _ = ref.mask_decoder(
                image_embeddings=emb,
                image_pe=ref.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sp,
                dense_prompt_embeddings=de,
            )
            _close(ours.decode(emb, pts, lab, prev), low_ref, "full low-res logits")
