"""Attention of the image encoder: SAM-Med3D's decomposed relative-position bias, exactly.

Two facts of the official network shape this module (see docs/network.md):

* The bias is broadcast "wrongly" in 3D. For a query at grid position (qd, qh, qw) and a key
  at (kd, kh, kw) the official code adds

      q[qd,qh,qw]·Td[qd-kw] + q[qd,qh,kd]·Th[qh-kw] + q[qd,qh,kh]·Tw[kh-kw]

  where q is the unscaled per-head query *at the indicated grid position* and
  ``Tx[i-j] = table_x[i - j + S - 1]``. The trained weights expect exactly this.
* Window blocks zero-pad the normalised g³ token grid to one S³ window (S = 14 > g = 8), so the
  2,232 padded tokens all carry the qkv bias (q = bq, k = bk, v = bv) and the padded keys take
  part in every real query's softmax.

The fast path never materialises the padded tokens. Padded keys share one key and one value and
differ only through the bias, whose exponential factorises over the key axes:

    Σ_{K padded} exp(bias) = Σ_{kw≥g} e^A·Sd·Sh  +  Σ_{kw<g} e^A·(Sd_pad·Sh + Sd_real·Sh_pad)

with A[kw] = q_Q·Td[qd-kw], Sd[kw] = Σ_kd exp(q[qd,qh,kd]·Th[qh-kw]) and
Sh[kw] = Σ_kh exp(q[qd,qh,kh]·Tw[kh-kw]), split into the real (< g) and padded (≥ g) parts so
that nothing is subtracted. All sums are taken in the log domain. The padded keys then collapse
into one *virtual key* (key bk, value bv, additive bias = log of that mass), and the whole window
block becomes one fused attention of g³ queries over g³ + 1 keys.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F


def relative_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """Gather ``table[i - j + size - 1]`` into a (size, size, head_dim) tensor."""
    idx = torch.arange(size, device=table.device)
    return table[idx[:, None] - idx[None, :] + size - 1]


def _bias_terms(
    q: torch.Tensor,
    q_pad: torch.Tensor | None,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    extent: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three factors of the quirky bias, for the real queries.

    ``q`` is (B, H, g, g, g, hd); ``q_pad`` is the per-head q bias (B, H, hd) used at padded
    positions, or None when ``extent == g``. Returns

    * A  (B, H, g, g, g, S): q[Q]·Td[qd-kw]
    * Bd (B, H, g, g, S, S): q[qd,qh,kd]·Th[qh-kw], indexed [.., kd, kw]
    * Ch (B, H, g, g, S, S): q[qd,qh,kh]·Tw[kh-kw], indexed [.., kh, kw]
    """
    g = q.shape[2]
    rd, rh, rw = (relative_table(t, extent) for t in tables)
    if extent > g:
        if q_pad is None:
            raise ValueError(f"a window of extent {extent} > g = {g} needs the padded tokens' q (q_pad)")
        b, h, _, _, _, hd = q.shape
        pad = q_pad[:, :, None, None, None, :].expand(b, h, g, g, extent - g, hd)
        q_ext = torch.cat([q, pad], dim=4)
    else:
        q_ext = q
    a = torch.einsum("bhdxyc,dkc->bhdxyk", q, rd[:g])
    bd = torch.einsum("bhdxkc,xwc->bhdxkw", q_ext, rh[:g])
    ch = torch.einsum("bhdxkc,kwc->bhdxkw", q_ext, rw)
    return a, bd, ch


def _real_bias(a: torch.Tensor, bd: torch.Tensor, ch: torch.Tensor, g: int) -> torch.Tensor:
    """The bias between real queries and real keys, as (B, H, g³, g³)."""
    b, h = a.shape[:2]
    bias = a[:, :, :, :, :, None, None, :g] + bd[:, :, :, :, None, :g, None, :g] + ch[:, :, :, :, None, None, :g, :g]
    return bias.reshape(b, h, g**3, g**3)


def _log_padded_mass(a: torch.Tensor, bd: torch.Tensor, ch: torch.Tensor, g: int) -> torch.Tensor:
    """log Σ over padded keys of exp(bias), per real query, as (B, H, g³)."""
    b, h = a.shape[:2]
    sd_all = torch.logsumexp(bd, dim=4)  # (B, H, g, g, S) over kd
    sd_real = torch.logsumexp(bd[:, :, :, :, :g], dim=4)
    sd_pad = torch.logsumexp(bd[:, :, :, :, g:], dim=4)
    sh_all = torch.logsumexp(ch, dim=4)  # over kh
    sh_pad = torch.logsumexp(ch[:, :, :, :, g:], dim=4)
    # kw < g: at least one of kd, kh is padded; kw >= g: every key is padded.
    inner_real_w = torch.logaddexp(sd_pad + sh_all, sd_real + sh_pad)[..., :g]
    inner_pad_w = (sd_all + sh_all)[..., g:]
    inner = torch.cat([inner_real_w, inner_pad_w], dim=-1)  # (B, H, g, g, S)
    mass = torch.logsumexp(a + inner[:, :, :, :, None, :], dim=-1)  # (B, H, g, g, g)
    return mass.reshape(b, h, g**3)


def relpos_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    qkv_bias: torch.Tensor | None,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    extent: int,
) -> torch.Tensor:
    """Exact SAM-Med3D attention of the real tokens, padded window or global.

    q, k, v: (B, H, g³, hd) for the real g³ tokens. ``qkv_bias`` is the qkv Linear's bias
    reshaped (3, H, hd) (what padded tokens carry); ``extent`` is the window edge S (S == g for a
    global block). Returns (B, H, g³, hd).
    """
    b, h, n, hd = q.shape
    g = round(n ** (1 / 3))
    q_grid = q.reshape(b, h, g, g, g, hd)
    q_pad = k_pad = v_pad = None
    if extent > g:
        if qkv_bias is None:
            zeros = q.new_zeros(3, h, hd)
            qkv_bias = zeros
        q_pad, k_pad, v_pad = (t.to(q.dtype)[None].expand(b, h, hd) for t in qkv_bias.unbind(0))
    a, bd, ch = _bias_terms(q_grid, q_pad, tables, extent)
    bias = _real_bias(a, bd, ch, g)
    if k_pad is not None and v_pad is not None:  # extent > g
        log_mass = _log_padded_mass(a, bd, ch, g)
        k = torch.cat([k, k_pad[:, :, None, :]], dim=2)
        v = torch.cat([v, v_pad[:, :, None, :]], dim=2)
        bias = torch.cat([bias, log_mass[..., None]], dim=-1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))


def padded_window_attention_literal(
    x_norm: torch.Tensor,
    qkv: torch.nn.Linear,
    num_heads: int,
    tables: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    extent: int,
) -> torch.Tensor:
    """The official computation, literally: pad the grid to extent³, attend over all of it, crop.

    Slow (2,744² scores per head for the official model); kept as a debugging reference.
    x_norm: (B, g, g, g, C) normalised tokens. Returns (B, H, g³, hd) for the real tokens.
    """
    b, g = x_norm.shape[0], x_norm.shape[1]
    p = extent - g
    xp = F.pad(x_norm, (0, 0, 0, p, 0, p, 0, p)) if p > 0 else x_norm
    n = extent**3
    q, k, v = qkv(xp).reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    hd = q.shape[-1]
    q_grid = q.reshape(b, num_heads, extent, extent, extent, hd)
    a, bd, ch = _bias_terms(q_grid, None, tables, extent)
    bias = _real_bias(a, bd, ch, extent)
    attn = torch.softmax(q @ k.transpose(-2, -1) * hd**-0.5 + bias, dim=-1)
    out = (attn @ v).reshape(b, num_heads, extent, extent, extent, hd)
    return cast(torch.Tensor, out[:, :, :g, :g, :g].reshape(b, num_heads, g**3, hd))
