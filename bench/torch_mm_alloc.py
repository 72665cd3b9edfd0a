#!/usr/bin/env python3
"""Why PyTorch's allocator matters on these machines: torch.mm at N^3 f32 with a fresh output
tensor each call vs the same product written into a reused one (out=), and OpenBLAS's sgemm_
called directly through ctypes in the same process. A large gap between the first and the other
two is the page-fault cost of memory that the allocator returned to the OS (docs/benchmarks.md,
"Giving the peer its best"). Run it plain and under bench/compare_common.sh's torch_tuned_env:
  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/torch_mm_alloc.py [N] [THREADS]"""
import ctypes, sys, time
import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)


def gflops(fn, reps=9):
    fn(), fn()
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - s)
    return 2 * n ** 3 / sorted(ts)[reps // 2] / 1e9


blas = ctypes.CDLL("libblas.so.3")
ni, one, zero, nt = ctypes.c_int(n), ctypes.c_float(1), ctypes.c_float(0), ctypes.c_char(b"N")
ptr = lambda t: ctypes.c_void_p(t.data_ptr())
ref = ctypes.byref
# Column-major C^T = B^T A^T: the same product as a @ b on row-major tensors.
sgemm = lambda: blas.sgemm_(ref(nt), ref(nt), ref(ni), ref(ni), ref(ni), ref(one), ptr(b), ref(ni), ptr(a), ref(ni),
                            ref(zero), ptr(c), ref(ni))
print(f"{n}^3 f32, {torch.get_num_threads()} threads, median of 9 (GFLOP/s):")
print(f"  torch.mm, fresh output   {gflops(lambda: torch.mm(a, b)):7.1f}")
print(f"  torch.mm, out= reused    {gflops(lambda: torch.mm(a, b, out=c)):7.1f}")
print(f"  sgemm_ via ctypes        {gflops(sgemm):7.1f}")
