# GPU training image: JAX with CUDA 12 (its CUDA libraries come from pip; the
# host needs an NVIDIA driver and the NVIDIA container toolkit).
#   docker build -t keras-ddpm .
#   docker run --gpus all -v "$PWD/runs:/app/runs" keras-ddpm train --image-size 64
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY keras_ddpm ./keras_ddpm
# As README installs it; TensorFlow (CPU build) only feeds the tf.data pipeline.
RUN pip install --no-cache-dir "jax[cuda12]" tensorflow-cpu -e ".[datasets,viz]"

ENV KERAS_BACKEND=jax
ENTRYPOINT ["keras-ddpm"]
CMD ["train"]
