#!/bin/sh
# Builds the CPU backend into one test/bench binary by hand (not part of CI).
set -e
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/crb_cpu_test}
mkdir -p $OUT
FLAGS="-std=c++17 -O3 -g -fPIC -pthread -Wall -Wextra -Wno-unused-parameter"
for f in $(ls *.cc | grep -v "_avx" | sed "s/\.cc$//"); do
  g++ $FLAGS -c $f.cc -o $OUT/$f.o &
done
g++ $FLAGS -mavx2 -mfma -c gemm_avx2.cc -o $OUT/gemm_avx2.o &
g++ $FLAGS -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -c gemm_avx512.cc -o $OUT/gemm_avx512.o &
g++ $FLAGS -mavx2 -ffp-contract=off -c batchnorm_avx2.cc -o $OUT/batchnorm_avx2.o &
g++ $FLAGS -mavx512f -mavx512bw -mavx512dq -mavx512vl -ffp-contract=off -c batchnorm_avx512.cc -o $OUT/batchnorm_avx512.o &
wait
rm -f $OUT/libcrb_cpu.a; ar rcs $OUT/libcrb_cpu.a $OUT/*.o
g++ -shared -o $OUT/libcrb_cpu.so -Wl,--whole-archive $OUT/libcrb_cpu.a -Wl,--no-whole-archive -pthread
for t in ${TESTS:-gemm_test}; do
  g++ $FLAGS test/$t.cc -o $OUT/$t $OUT/libcrb_cpu.a
done
