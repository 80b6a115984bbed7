#!/bin/bash
# Issue 10's end-to-end measurements (docs/performance.md): wall time and peak memory of
# real `gdbench run` invocations, one of them with another CPU-bound process running.
G=${GDBENCH:-.venv/bin/gdbench}
SWEEP="-p sgd,momentum,adam,l1,mse,huber,default,xavier,kaiming --lr 0.001,0.003,0.01,0.02,0.03 --epochs 500 --seeds 10 --device cpu --no-plot"
t() { /usr/bin/time -f "%e s wall, %M KiB peak" "$@" > /dev/null 2> "${OUT:-/tmp/gdbench-measure}.err"; tail -1 "${OUT:-/tmp/gdbench-measure}.err"; }
python3 -c "while True: pass" & BUSY=$!
echo "== 1,350-run sweep, one other CPU-bound process running"
echo -n "default: "; t $G run $SWEEP --out ${OUT:-/tmp/gdbench-measure}
echo -n "OMP_NUM_THREADS=1: "; OMP_NUM_THREADS=1 t $G run $SWEEP --out ${OUT:-/tmp/gdbench-measure}
echo -n "torch default threads (--threads 2): "; t $G run $SWEEP --out ${OUT:-/tmp/gdbench-measure} --threads 2
kill $BUSY
echo "== idle machine"
echo -n "1,350 default: "; t $G run $SWEEP --out ${OUT:-/tmp/gdbench-measure}
echo -n "4000x500 adam in process (--workers 1): "; t $G run -p adam --seeds 4000 --epochs 500 --device cpu --no-plot --out ${OUT:-/tmp/gdbench-measure} --workers 1
echo -n "4000x500 adam --workers 2: "; t $G run -p adam --seeds 4000 --epochs 500 --device cpu --no-plot --out ${OUT:-/tmp/gdbench-measure} --workers 2
echo -n "20000x500 adam --history every:10: "; t $G run -p adam --seeds 20000 --epochs 500 --device cpu --no-plot --out ${OUT:-/tmp/gdbench-measure} --history every:10 --workers 1
echo -n "20000x500 adam --history every:10 --max-batch 100: "; t $G run -p adam --seeds 20000 --epochs 500 --device cpu --no-plot --out ${OUT:-/tmp/gdbench-measure} --history every:10 --workers 1 --max-batch 100
