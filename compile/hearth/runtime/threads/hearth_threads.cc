/*
 * Hearth's thread pool for the threaded wasm-cpu runtime (compiled with -matomics -mbulk-memory and
 * linked against an imported shared WebAssembly.Memory, see hearth/runtime/build.py).
 *
 * The wheel's web/emcc/wasm_runtime.cc runs every TVMBackendParallelLaunch as one task on the calling
 * thread; the threaded build drops that definition (source_patches.THREAD_PATCHES) and uses this one.
 * Workers are JS Workers that instantiate the same module on the same memory, set their own stack
 * pointer and call hearth_thread_worker(), which never returns: between launches a worker spins
 * briefly and then sleeps in memory.atomic.wait32, so a launch costs one store + notify and a join is
 * a spin on one counter (a decode step has ~150 launches; the kernels between them are ~0.1-1 ms).
 *
 * Only kernel bodies run on workers. The one runtime call they make is the workspace allocator
 * (tiles bigger than the stack limit), whose pool is a plain global in this build (thread_local is
 * compiled away without atomics), so it is serialised here with a spin lock.
 */
#include <emscripten/emscripten.h>
#include <stdint.h>
#include <tvm/runtime/c_backend_api.h>

extern "C" void* HearthUnlockedAllocWorkspace(int device_type, int device_id, uint64_t size,
                                               int dtype_code_hint, int dtype_bits_hint);
extern "C" int HearthUnlockedFreeWorkspace(int device_type, int device_id, void* ptr);

namespace {

constexpr int32_t kMaxWorkers = 63;

struct Job {
  FTVMParallelLambda flambda;
  void* cdata;
  int32_t num_task;
};

// Each on its own cache line: workers poll generation, the launcher polls pending.
alignas(64) int32_t g_generation = 0;  // bumped once per launch; workers sleep on it
alignas(64) int32_t g_pending = 0;     // workers that have not finished the current launch
alignas(64) int32_t g_ready = 0;       // workers inside hearth_thread_worker
alignas(64) int32_t g_use = 0;         // workers a launch uses (set by hearth_threads_use)
alignas(64) int32_t g_busy = 0;        // a launch is running: a nested one runs serially
alignas(64) int32_t g_failed = 0;      // a task returned non-zero in the current launch
alignas(64) int32_t g_alloc_lock = 0;
alignas(64) int32_t g_barrier_count = 0;
alignas(64) int32_t g_barrier_gen = 0;
int32_t g_launches = 0;  // launches that ran on the workers (tests and diagnostics read it)
int32_t g_spin = 1 << 14;  // polls before a worker sleeps
Job g_job;

inline int32_t load(const int32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline void store(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

void lock(int32_t* p) {
  while (__atomic_exchange_n(p, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(p, __ATOMIC_RELAXED) != 0) {
    }
  }
}
void unlock(int32_t* p) { __atomic_store_n(p, 0, __ATOMIC_RELEASE); }

int run_serial(FTVMParallelLambda flambda, void* cdata) {
  TVMParallelGroupEnv env;
  env.sync_handle = nullptr;
  env.num_task = 1;
  return flambda(0, &env, cdata);
}

}  // namespace

extern "C" {

int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void* cdata, int num_task) {
  const int32_t use = load(&g_use);
  if (use <= 0 || __atomic_exchange_n(&g_busy, 1, __ATOMIC_SEQ_CST) != 0) {
    return run_serial(flambda, cdata) == 0 ? 0 : -1;
  }
  // g_use > 0 only after every worker is ready (hearth_threads_use), so g_ready is stable here.
  const int32_t workers = load(&g_ready);
  int32_t n = use + 1;
  if (num_task > 0 && num_task < n) n = num_task;
  g_job.flambda = flambda;
  g_job.cdata = cdata;
  g_job.num_task = n;
  store(&g_failed, 0);
  // Every ready worker answers every launch (those past num_task only count down), so none can
  // read a later launch's job while the launcher still waits for this one.
  store(&g_pending, workers);
  __atomic_fetch_add(&g_generation, 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify(&g_generation, static_cast<uint32_t>(workers));
  TVMParallelGroupEnv env;
  env.sync_handle = nullptr;
  env.num_task = n;
  int ret = flambda(0, &env, cdata);
  // The caller may be a browser's main thread, where wait32 traps: spin.
  while (load(&g_pending) != 0) {
  }
  const int failed = load(&g_failed);
  ++g_launches;
  store(&g_busy, 0);
  return (ret == 0 && failed == 0) ? 0 : -1;
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv* penv) {
  (void)task_id;
  if (penv->num_task <= 1) return 0;
  const int32_t gen = load(&g_barrier_gen);
  if (__atomic_add_fetch(&g_barrier_count, 1, __ATOMIC_SEQ_CST) == penv->num_task) {
    store(&g_barrier_count, 0);
    __atomic_fetch_add(&g_barrier_gen, 1, __ATOMIC_SEQ_CST);
  } else {
    while (load(&g_barrier_gen) == gen) {
    }
  }
  return 0;
}

void* TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t size, int dtype_code_hint,
                               int dtype_bits_hint) {
  lock(&g_alloc_lock);
  void* ptr = HearthUnlockedAllocWorkspace(device_type, device_id, size, dtype_code_hint, dtype_bits_hint);
  unlock(&g_alloc_lock);
  return ptr;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void* ptr) {
  lock(&g_alloc_lock);
  int ret = HearthUnlockedFreeWorkspace(device_type, device_id, ptr);
  unlock(&g_alloc_lock);
  return ret;
}

/*! \brief Body of worker `id` (1-based: task 0 is the launching thread); never returns. */
EMSCRIPTEN_KEEPALIVE void hearth_thread_worker(int32_t id) {
  int32_t seen = load(&g_generation);
  __atomic_fetch_add(&g_ready, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    int32_t gen = load(&g_generation);
    for (int32_t i = 0; gen == seen && i < g_spin; ++i) gen = load(&g_generation);
    while (gen == seen) {
      __builtin_wasm_memory_atomic_wait32(&g_generation, seen, -1);
      gen = load(&g_generation);
    }
    seen = gen;
    const Job job = g_job;
    if (id < job.num_task) {
      TVMParallelGroupEnv env;
      env.sync_handle = nullptr;
      env.num_task = job.num_task;
      if (job.flambda(id, &env, job.cdata) != 0) store(&g_failed, 1);
    }
    __atomic_sub_fetch(&g_pending, 1, __ATOMIC_SEQ_CST);
  }
}

/*! \brief Parallel launches that ran on the workers so far. */
EMSCRIPTEN_KEEPALIVE int32_t hearth_threads_launches(void) { return g_launches; }

/*! \brief Workers that have entered hearth_thread_worker. */
EMSCRIPTEN_KEEPALIVE int32_t hearth_threads_ready(void) { return load(&g_ready); }

/*!
 * \brief Use `n` workers from the next launch on (0: run every launch on the calling thread).
 * \return the number used: n clamped to the ready workers.
 */
EMSCRIPTEN_KEEPALIVE int32_t hearth_threads_use(int32_t n) {
  const int32_t ready = load(&g_ready);
  if (n < 0) n = 0;
  if (n > ready) n = ready;
  if (n > kMaxWorkers) n = kMaxWorkers;
  store(&g_use, n);
  return n;
}

/*! \brief Polls of the launch counter before an idle worker sleeps (0: sleep at once). */
EMSCRIPTEN_KEEPALIVE void hearth_threads_set_spin(int32_t polls) { store(&g_spin, polls < 0 ? 0 : polls); }

}  // extern "C"
