"""Networks and the diffusion model that trains and samples them."""

from keras_ddpm.models.diffusion_model import DiffusionModel
from keras_ddpm.models.flops import count_flops
from keras_ddpm.models.unet import build_unet

__all__ = ["build_unet", "count_flops", "DiffusionModel"]
