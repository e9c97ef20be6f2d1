"""Network configurations as data: the official SAM-Med3D layout and sammoe's smaller ones.

A :class:`SamConfig` fixes every shape of the network. The named configs are the only
place where sizes are written down; the modules read them from here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sammoe_core.errors import InputError


class SamConfig(BaseModel):
    """Shapes of a SAM-Med3D-style network (image encoder, prompt encoder, mask decoder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    image_size: int = Field(128, gt=0, le=1024, description="edge of the cubic input crop, in voxels")
    patch_size: int = Field(16, gt=0, le=1024)
    encoder_dim: int = Field(768, gt=0, le=8192)
    encoder_depth: int = Field(12, gt=0, le=128)
    encoder_heads: int = Field(12, gt=0, le=128)
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    window_size: int = Field(14, ge=0, le=64, description="window of the non-global blocks (pads the token grid)")
    mlp_ratio: float = Field(4.0, gt=0, le=64)
    prompt_dim: int = Field(384, gt=0, le=8192, description="width of prompt tokens, image embedding and decoder")
    mask_in_chans: int = Field(16, gt=0, le=1024)
    decoder_depth: int = Field(2, gt=0, le=64)
    decoder_heads: int = Field(8, gt=0, le=128)
    decoder_mlp_dim: int = Field(2048, gt=0, le=65536)
    attention_downsample_rate: int = Field(2, gt=0, le=64)
    num_multimask_outputs: int = Field(3, ge=0, le=16)
    iou_head_depth: int = Field(3, gt=0, le=64)
    iou_head_hidden_dim: int = Field(256, gt=0, le=8192)
    box_prompts: bool = Field(False, description="two extra point embeddings for box corners (CVPR-2025 checkpoints)")

    @model_validator(mode="after")
    def _check(self) -> SamConfig:
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        if self.encoder_dim % self.encoder_heads:
            raise ValueError("encoder_dim must be divisible by encoder_heads")
        if self.prompt_dim % 3:
            raise ValueError("prompt_dim must be divisible by 3 (random-Fourier PE per axis)")
        internal = self.prompt_dim // self.attention_downsample_rate
        if self.prompt_dim % self.decoder_heads or internal % self.decoder_heads:
            raise ValueError("decoder_heads must divide prompt_dim and its downsampled width")
        if self.prompt_dim % 8:
            raise ValueError("prompt_dim must be divisible by 8 (upscaling to prompt_dim // 8)")
        if any(i < 0 or i >= self.encoder_depth for i in self.global_attn_indexes):
            raise ValueError("global_attn_indexes out of range")
        if self.window_size and self.window_size < self.grid_size:
            raise ValueError(
                "window_size smaller than the token grid (several windows) is not supported; "
                "every SAM-Med3D checkpoint pads its grid into a single window"
            )
        return self

    @property
    def grid_size(self) -> int:
        """Edge of the token grid (8 for the official 128³ input)."""
        return self.image_size // self.patch_size

    @property
    def low_res_size(self) -> int:
        """Edge of the decoder's low-resolution logits (32 for the official model)."""
        return self.grid_size * 4

    @property
    def num_point_embeddings(self) -> int:
        return 4 if self.box_prompts else 2


class UnknownConfig(InputError, KeyError):
    """No network config of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


_CONFIGS: dict[str, SamConfig] = {}


def _add(cfg: SamConfig) -> None:
    _CONFIGS[cfg.name] = cfg


# The official `vit_b_ori` layout: every released checkpoint (SAM-Med3D, -turbo, ...).
_add(SamConfig(name="sam-med3d-vit-b"))
# The CVPR-2025 checkpoints: the same network plus two box-corner embeddings.
_add(SamConfig(name="sam-med3d-vit-b-box", box_prompts=True))
# sammoe's embedded default foundation: same 128³ input and 1.5 mm crops, a narrower encoder.
_add(
    SamConfig(
        name="sammoe-small",
        encoder_dim=192,
        encoder_depth=6,
        encoder_heads=6,
        global_attn_indexes=(2, 5),
        prompt_dim=96,
        decoder_heads=4,
        decoder_mlp_dim=384,
        iou_head_hidden_dim=64,
    )
)
# The default foundation since December 2026: sammoe-small with the two box-corner embeddings
# of the CVPR-2025 layout, trained with box prompts as well as clicks.
_add(
    SamConfig(
        name="sammoe-small-box",
        encoder_dim=192,
        encoder_depth=6,
        encoder_heads=6,
        global_attn_indexes=(2, 5),
        prompt_dim=96,
        decoder_heads=4,
        decoder_mlp_dim=384,
        iou_head_hidden_dim=64,
        box_prompts=True,
    )
)
# A tiny config for fast tests: 64³ input (4³ tokens) still pads to the 14³ window.
_add(
    SamConfig(
        name="sammoe-tiny",
        image_size=64,
        encoder_dim=48,
        encoder_depth=2,
        encoder_heads=2,
        global_attn_indexes=(1,),
        prompt_dim=48,
        decoder_heads=2,
        decoder_mlp_dim=64,
        iou_head_hidden_dim=32,
    )
)


def get_config(name: str) -> SamConfig:
    """Return the named config, or raise KeyError listing the known names."""
    try:
        return _CONFIGS[name]
    except KeyError:
        raise UnknownConfig(f"unknown model config {name!r}; known: {', '.join(sorted(_CONFIGS))}") from None


def config_names() -> list[str]:
    return sorted(_CONFIGS)
