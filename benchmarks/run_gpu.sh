#!/usr/bin/env bash
# Throughput benchmarks on an NVIDIA GPU machine that has JAX and PyTorch (no
# TensorFlow, no network). Installs keras-ddpm and the wheels it is handed
# offline into a throwaway virtual environment that also sees the packages of
# $PYTHON, runs the full 64×64 configuration on JAX and PyTorch in bfloat16 and
# float32, and writes pytest-benchmark JSON files and a markdown page to --out.
#
#   bash benchmarks/run_gpu.sh --wheels /path/to/wheels [--out DIR]
#   bash benchmarks/run_gpu.sh --dry-run           # the same plumbing on a CPU, tiny sizes
#
# --wheels: a folder of wheels (keras, pytest-benchmark and whatever pure-Python
# dependencies of theirs the machine lacks). Each pytest run has its own time
# limit, so the whole script stays under 8 minutes; a part that runs out of time
# is reported and the page is built from the parts that finished.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
wheels=""
out=""
dry_run=0
backends="jax torch"
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) wheels="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --backends) backends="$2"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "run_gpu.sh: unknown argument $1 (expected --wheels DIR, --out DIR, --backends 'jax torch', --dry-run)" >&2; exit 2 ;;
    esac
done
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="${out:-$repo/benchmarks/results/gpu-$stamp}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

echo "== environment ($work/venv)"
"$python" -m venv "$work/venv"
# The new environment sees every package of $python (JAX, PyTorch, NumPy, ...).
"$python" -c 'import site, sys; print("\n".join(site.getsitepackages() + [p for p in sys.path if p.endswith("site-packages")]))' \
    > "$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/outer.pth"
venv_python="$work/venv/bin/python"
pip=("$venv_python" -m pip install --quiet --no-index --disable-pip-version-check)
if [ -n "$wheels" ]; then
    [ -d "$wheels" ] || { echo "run_gpu.sh: --wheels $wheels is not a folder" >&2; exit 2; }
    "${pip[@]}" --find-links "$wheels" keras pytest pytest-benchmark
fi
# The package itself, as a wheel built offline; without setuptools at hand the
# source tree is put on the path instead.
if "$python" -m pip wheel --quiet --no-deps --no-build-isolation --no-index \
        -w "$work/dist" "$repo" >"$work/wheel.log" 2>&1; then
    "${pip[@]}" --no-deps --force-reinstall "$work"/dist/keras_ddpm-*.whl
    echo "installed $(basename "$work"/dist/keras_ddpm-*.whl)"
else
    echo "could not build a wheel offline (see below); using the source tree"
    tail -3 "$work/wheel.log"
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi
"$venv_python" -c 'import keras, keras_ddpm, pytest_benchmark; print("keras", keras.__version__, "keras_ddpm", keras_ddpm.__version__, "from", keras_ddpm.__file__)'

if [ "$dry_run" = 1 ]; then
    export JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES=""
    sizes=(--image-size 16 --widths 8 16 --batch 2 --sample-batch 2 --sampling-steps 5
           --eager-steps 3 --train-steps 2 --rounds 1)
    limits=(train:600 sample:600)
    conditions="dry run of the GPU script on a CPU, tiny sizes: plumbing only"
else
    # 64×64 flowers U-Net; the eager sampling loop is timed over 100 of its
    # 1000 steps (each step is the same work).
    sizes=(--full --batch 256 64 --policy mixed_bfloat16 float32 --rounds 3 --eager-steps 100)
    limits=(train:140 sample:75)
    conditions="${CONDITIONS:-dedicated GPU machine}"
fi

status=0
for backend in $backends; do
    for part_limit in "${limits[@]}"; do
        part="${part_limit%%:*}"
        limit="${part_limit##*:}"
        [ "$part" = train ] && file=test_train.py || file=test_sampling.py
        json="$out/gpu-$backend-$part.json"
        echo "== $backend $part (at most ${limit}s; $((SECONDS - start))s so far)"
        # Run from the benchmarks folder so the installed package, not the source
        # tree, is imported (unless the source tree was put on the path above).
        if (cd "$repo/benchmarks" && KERAS_BACKEND="$backend" timeout "$limit" \
                "$venv_python" -m pytest -q -p no:cacheprovider -o pythonpath= \
                "$file" --benchmark-only \
                "${sizes[@]}" --conditions "$conditions" \
                --records "$json" --benchmark-json="$out/stats-$backend-$part.json" \
                --benchmark-columns=median,rounds) \
                >"$out/gpu-$backend-$part.log" 2>&1; then
            sed -n '/keras-ddpm throughput/,/passed/p' "$out/gpu-$backend-$part.log"
        else
            echo "!! $backend $part failed or ran out of time (the benchmarks it finished are kept); last lines of its log:"
            tail -15 "$out/gpu-$backend-$part.log"
            status=1
        fi
    done
done

echo "== bf16 matmul peak"
for backend in $backends; do
    KERAS_BACKEND="$backend" "$venv_python" -c "
import sys; sys.path.insert(0, '$repo/benchmarks')
import harness
size = 2048 if harness.device_name().startswith('cpu') else 8192
print('$backend', harness.device_name(), 'bfloat16 %dx%d matmul: %.0f GFLOP/s' % (size, size, harness.measure_matmul_peak('bfloat16', size)))
" 2>/dev/null | tail -1 | tee -a "$out/matmul_peak.txt" || status=1
done

if compgen -G "$out/gpu-*.json" >/dev/null; then
    "$venv_python" "$repo/benchmarks/make_table.py" "$out"/gpu-*.json -o "$out/benchmarks.md"
else
    echo "!! no benchmark finished; no table written"
    status=1
fi
echo "== done in $((SECONDS - start))s; results in $out"
exit $status
