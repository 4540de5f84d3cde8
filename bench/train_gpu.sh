#!/bin/bash
# GPU check of training, in one call (~6 min on an H100/H200): train the base preset for MIN minutes with
# bf16 + torch.compile and a time budget, load the result and generate, then bench/train.py eager and compiled.
#   DATA=path/to/corpus OUT=/tmp/out bash bench/train_gpu.sh
# If the machine lacks datasets/mido, put their wheels in .whl/ (see the device notes): they are installed first.
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to a built corpus or a MIDI folder}; OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PRESET=${PRESET:-base}; BS=${BS:-32}; MIN=${MIN:-1.0}; STEPS=${STEPS:-60}; WARM=${WARM:-20}; PY=${PY:-python3}
exec > >(tee "$OUT/train_gpu.log") 2>&1
if [ -d .whl ]; then
  PA=$($PY -c "import pyarrow; print(int(pyarrow.__version__.split('.')[0]))" 2>/dev/null || echo 0)
  W=$(ls .whl/*.whl | grep -v pyarrow); [ "$PA" -lt 24 ] && W="$W $(ls .whl/pyarrow-*.whl)"  # datasets 5 needs pyarrow >= 24
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $W || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export MUSENET_HF_CHECKPOINT_KEY_FILE=/tmp/train_gpu.key
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch, transformers, accelerate, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'datasets', datasets.__version__)"

echo "=== train.py --preset $PRESET, bf16 (auto), torch.compile, ${MIN} min budget"
rm -rf /tmp/train_gpu_run
timeout 240 $PY train.py --data "$DATA" --output_dir /tmp/train_gpu_run --preset $PRESET --per_device_batch_size $BS \
  --max_steps 100000 --max_train_minutes $MIN --torch_compile --eval_steps 150 --save_steps 0 --logging_steps 20 \
  --disable_tqdm --warmup_steps 50 2>&1 | grep -v "Removed shared"
cp /tmp/train_gpu_run/metrics.jsonl /tmp/train_gpu_run/training_record.json "$OUT/" 2>/dev/null

echo "=== load with AutoModelForCausalLM + AutoTokenizer, generate"
timeout 90 $PY - <<'PYEOF'
import time, torch, musenet_hf
from transformers import AutoModelForCausalLM, AutoTokenizer
m = AutoModelForCausalLM.from_pretrained("/tmp/train_gpu_run").to("cuda"); t = AutoTokenizer.from_pretrained("/tmp/train_gpu_run")
v = t.musenet_vocab; h = [t.bos_token_id, v.style_id("unknown"), v.inst_id(0), v.tempo_id(120)]
s = time.perf_counter(); out = m.generate(torch.tensor([h], device="cuda"))
print("generated", tuple(out.shape), f"in {time.perf_counter() - s:.1f} s;", "notes:", len(t.decode_events(out[0].cpu()).notes))
PYEOF

for mode in eager compile; do
  echo "=== bench/train.py ($mode)"
  flag=$([ $mode = compile ] && echo --compile)
  timeout 200 $PY bench/train.py --data "$DATA" --preset $PRESET --batch_size $BS --steps $STEPS --warmup $WARM --workers 4 $flag \
    --json "$OUT/bench_train_$mode.json" 2>&1 | grep -v "Removed shared\|^{'" | tail -9
done
