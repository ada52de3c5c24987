#!/usr/bin/env bash
# The GPU check, in one run of at most ~8 minutes on an H100/H200 (benchmarks/README.md, "On a GPU"):
#   1. benchmarks/adapter_training.py --shape paper: mBERT and XLM-R shapes, batch 16 x 512; this project's loop
#      (fp32, bf16) against AdapterTrainer (fp32: the paper's setup, and bf16), each in its own process;
#   2. benchmarks/pppl.py --shape paper --models xlmr: batched (bf16 `auto`, fp32) against the per-token loop,
#      plus both paths in float64 on the first 8 sentences (their scores must agree);
#   3. the demo profile's adapt, pppl, finetune and llm stages on CUDA for one language (qab) and model (tiny
#      XLM-R; tiny Llama for the causal-LM adapter and the prompted baseline), through ./run_all.sh --target.
# Every result lands under $OUT (at most 8 files): the two benchmark JSONs, demo_runs.tar.gz (the runs' result.json,
# executed notebooks and logs), env.txt and gpu_check.log.
#
#   OUT=/tmp/gpu benchmarks/gpu_check.sh            # on a CUDA machine with the project's .venv
#   OUT=/tmp/gpu SMOKE=1 benchmarks/gpu_check.sh    # the same steps at tiny shapes, on a CPU, to try the script
#
# On a machine without internet whose system python has a CUDA PyTorch (this workplace's device machine), the
# project's other packages travel as cp312 wheels in .whl/ and are put on the path of a bare .venv (a .pth file);
# the finished preprocess and base_model runs of the demo and its world travel in runs/ and data/demo_world, so the
# stages checked here are the GPU ones. Elsewhere .venv is used as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
log() { echo "[$(date -u +%T)] $*"; }
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 MPLBACKEND=Agg

if [ -d .whl ] && [ ! -x .venv/bin/python ]; then
  log "environment: the wheels of .whl/ on top of the system python's PyTorch"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  base=$(python3 -c 'import site; print(site.getsitepackages()[0])')
  python3 -m venv --without-pip .venv || exit 1
  sp=$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')
  printf '%s\n' /tmp/site "$base" "$PWD" >"$sp/00-device.pth"
  touch ".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)"  # scripts/setup_env.sh
fi
PY=.venv/bin/python
{
  date -u +%FT%TZ
  nvidia-smi 2>&1 || echo "no nvidia-smi"
  $PY -c 'import torch, transformers, adapters, accelerate, datasets, papermill; print("torch", torch.__version__, "cuda", torch.version.cuda, "| transformers", transformers.__version__, "| adapters", adapters.__version__, "| accelerate", accelerate.__version__, "| datasets", datasets.__version__, "| papermill", papermill.__version__); print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")'
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

threads=$(($(nproc) / 2))
if [ "${SMOKE:-0}" = 1 ]; then
  train=(--shape tiny --steps 2 --warmup 1 --models mbert --pipelines ours_fp32,ref_fp32)
  pppl=(--shape tiny --models xlmr --sentences 20 --subset 3 --fp64-sentences 3)
else
  train=(--shape paper --steps 20 --warmup 5)
  pppl=(--shape paper --models xlmr --subset 100 --fp64-sentences 8)
fi
log "1. adapter training ${train[*]}"
timeout 250 $PY benchmarks/adapter_training.py "${train[@]}" --threads "$threads" \
  --out "$OUT/adapter_training.json" || log "adapter training: exit $?"
log "2. PPPL ${pppl[*]}"
timeout 120 $PY benchmarks/pppl.py "${pppl[@]}" --threads "$threads" --out "$OUT/pppl.json" || log "PPPL: exit $?"

log "3. the demo's GPU stages, one language and model, through ./run_all.sh"
mapfile -t targets < <($PY - <<'PYEOF'
from lrl_utils.orchestration.grid import Grid

wanted = ["adapt/tiny-xlmr.qab.glotcc.seq_bn_inv", "adapt/tiny-llama.qab.glotcc.seq_bn_inv",
          "pppl/tiny-xlmr.qab.none.none", "pppl/tiny-xlmr.qab.glotcc.seq_bn_inv",
          "finetune/tiny-xlmr.qab.tc.glotcc.seq_bn_inv.s1", "finetune/tiny-xlmr.qab.sa.glotcc.seq_bn_inv.s1",
          "finetune/tiny-xlmr.qab.ner.glotcc.seq_bn_inv.s1", "llm/tiny-llama.qab.tc.3shot"]
folders = {s.folder().split("--")[0]: s.folder() for s in Grid("demo").expand()}
for name in wanted:
    print(folders[name])
PYEOF
)
log "targets: ${targets[*]}"
start=$(date +%s)
timeout 150 ./run_all.sh --jobs 3 $(printf -- "--target %s " "${targets[@]}") || log "run_all.sh: exit $?"
log "demo stages: $(($(date +%s) - start)) s"
tar czf "$OUT/demo_runs.tar.gz" --ignore-failed-read \
  $(printf "runs/%s " "${targets[@]}") runs/_failed runs/_logs \
  runs/last_summary.json 2>/dev/null
log "done"
