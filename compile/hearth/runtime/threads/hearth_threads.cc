/*
 * Hearth's thread pool for the threaded wasm-cpu runtime (compiled with -matomics -mbulk-memory and
 * linked against an imported shared WebAssembly.Memory, see hearth/runtime/build.py).
 *
 * The wheel's web/emcc/wasm_runtime.cc runs every TVMBackendParallelLaunch as one task on the calling
 * thread; the threaded build drops that definition (source_patches.THREAD_PATCHES) and uses this one.
 * Workers are JS Workers that instantiate the same module on the same memory, set their own stack
 * pointer and call hearth_thread_worker(), which never returns: between launches a worker spins
 * briefly and then sleeps in memory.atomic.wait32 (woken only if it sleeps: a notify is a lock in the
 * engine). A decode step has ~150 launches of 0.05-1 ms kernels, so a launch must cost microseconds.
 *
 * Tasks are claimed, not assigned: a launch splits the loop into a few tasks per thread, and the
 * launching thread and every awake worker take the next unclaimed one with one compare-and-swap on a
 * word holding (launch number, next task). The launcher never waits for a worker that has not woken
 * up (it runs the remaining tasks itself), only for tasks a worker has already taken; on a machine
 * whose cores are busy with other programs a late worker costs nothing but its wake-up. Because any
 * thread may run any task, TVMBackendParallelBarrier (all tasks at once) is not supported; Hearth's
 * schedules do not use it.
 *
 * Only kernel bodies run on workers. The one runtime call they make is the workspace allocator
 * (tiles bigger than the stack limit), whose pool is a plain global in this build (thread_local is
 * compiled away without atomics), so it is serialised here with a spin lock.
 */
#include <emscripten/emscripten.h>
#include <stdint.h>
#include <tvm/ffi/c_api.h>
#include <tvm/runtime/c_backend_api.h>

extern "C" void* HearthUnlockedAllocWorkspace(int device_type, int device_id, uint64_t size,
                                               int dtype_code_hint, int dtype_bits_hint);
extern "C" int HearthUnlockedFreeWorkspace(int device_type, int device_id, void* ptr);

namespace {

constexpr int32_t kMaxWorkers = 63;
constexpr int32_t kTasksPerThread = 4;  // claimable tasks per thread: late workers leave less behind

struct Job {
  FTVMParallelLambda flambda;
  void* cdata;
  int32_t num_task;
};

// Each on its own cache line: workers poll generation, the claimers hit claim, the launcher polls done.
alignas(64) int32_t g_generation = 0;  // bumped once per launch; workers sleep on it
alignas(64) uint64_t g_claim = 0;      // (launch number << 32) | next unclaimed task
alignas(64) int32_t g_done = 0;        // tasks of the current launch that have finished
alignas(64) int32_t g_ready = 0;       // workers inside hearth_thread_worker
alignas(64) int32_t g_sleepers = 0;    // workers in (or about to enter) wait32
alignas(64) int32_t g_use = 0;         // workers a launch uses (set by hearth_threads_use)
alignas(64) int32_t g_busy = 0;        // a launch is running: a nested one runs serially
alignas(64) int32_t g_failed = 0;      // a task returned non-zero in the current launch
alignas(64) int32_t g_alloc_lock = 0;
alignas(64) int32_t g_poisoned = 0;    // a worker died (its JS caught an exception): stop waiting on it
int32_t g_launches = 0;     // launches that ran with workers (tests and diagnostics read it)
int32_t g_worker_tasks = 0;  // tasks the workers ran (diagnostics)
int32_t g_spin = 1 << 14;   // polls before a worker sleeps
Job g_job;

inline int32_t load(const int32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline void store(int32_t* p, int32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

void lock(int32_t* p) {
  while (__atomic_exchange_n(p, 1, __ATOMIC_ACQUIRE) != 0) {
    while (__atomic_load_n(p, __ATOMIC_RELAXED) != 0) {
      // A worker that died holding the lock never releases it; the launch fails anyway (see below).
      if (load(&g_poisoned) != 0) return;
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

/*!
 * \brief Claim and run tasks of launch `launch` (whose job the caller read after seeing that launch
 * number in g_claim) until none is left; returns how many this thread ran. A successful claim proves
 * the job copy current: the next launch's job is written only after all of this one's tasks are taken.
 */
int32_t run_tasks(uint32_t launch, const Job& job) {
  TVMParallelGroupEnv env;
  env.sync_handle = nullptr;
  env.num_task = job.num_task;
  int32_t ran = 0;
  uint64_t word = __atomic_load_n(&g_claim, __ATOMIC_SEQ_CST);
  for (;;) {
    const uint32_t task = static_cast<uint32_t>(word);
    if (static_cast<uint32_t>(word >> 32) != launch || task >= static_cast<uint32_t>(job.num_task)) return ran;
    if (!__atomic_compare_exchange_n(&g_claim, &word, word + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
      continue;  // `word` now holds the current value
    }
    if (job.flambda(static_cast<int>(task), &env, job.cdata) != 0) store(&g_failed, 1);
    __atomic_add_fetch(&g_done, 1, __ATOMIC_SEQ_CST);
    ++ran;
    word = __atomic_load_n(&g_claim, __ATOMIC_SEQ_CST);
  }
}

}  // namespace

extern "C" {

int TVMBackendParallelLaunch(FTVMParallelLambda flambda, void* cdata, int num_task) {
  const int32_t use = load(&g_use);
  if (use <= 0 || __atomic_exchange_n(&g_busy, 1, __ATOMIC_SEQ_CST) != 0) {
    return run_serial(flambda, cdata) == 0 ? 0 : -1;
  }
  int32_t n = kTasksPerThread * (use + 1);
  if (num_task > 0 && num_task < n) n = num_task;
  // The previous launch is complete (all its tasks done), so no thread reads the job now.
  g_job.flambda = flambda;
  g_job.cdata = cdata;
  g_job.num_task = n;
  store(&g_failed, 0);
  store(&g_done, 0);
  const uint32_t launch = static_cast<uint32_t>(__atomic_add_fetch(&g_generation, 1, __ATOMIC_SEQ_CST));
  __atomic_store_n(&g_claim, static_cast<uint64_t>(launch) << 32, __ATOMIC_SEQ_CST);
  // A spinning worker sees the new generation by itself; notify (a lock in the engine) only sleepers.
  // Sequentially consistent: a worker either sees this generation before it sleeps, or is counted here.
  if (load(&g_sleepers) > 0) __builtin_wasm_memory_atomic_notify(&g_generation, static_cast<uint32_t>(use));
  run_tasks(launch, g_job);
  // Only tasks a worker has claimed are left. The caller may be a browser's main thread, where
  // wait32 traps: spin.
  while (load(&g_done) != n) {
    if (load(&g_poisoned) != 0) {
      store(&g_use, 0);  // its tasks never finish: report the failure, run serially from now on
      store(&g_busy, 0);
      TVMFFIErrorSetRaisedFromCStr("RuntimeError",
                                   "a wasm worker thread failed during a parallel loop (see the worker's "
                                   "error); parallel loops run on one thread from now on");
      return -1;
    }
  }
  const int failed = load(&g_failed);
  ++g_launches;
  store(&g_busy, 0);
  return failed == 0 ? 0 : -1;
}

int TVMBackendParallelBarrier(int task_id, TVMParallelGroupEnv* penv) {
  (void)task_id;
  (void)penv;
  // Tasks are claimed, so the tasks of a launch need not run at the same time: a barrier could wait
  // forever. No Hearth schedule emits one (it comes from tvm_storage_sync("global") in a parallel loop).
  TVMFFIErrorSetRaisedFromCStr("RuntimeError",
                               "TVMBackendParallelBarrier is not supported by Hearth's wasm thread pool");
  return -1;
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

/*! \brief Body of worker `id` (1-based; the id only names it); never returns. */
EMSCRIPTEN_KEEPALIVE void hearth_thread_worker(int32_t id) {
  (void)id;
  int32_t seen = load(&g_generation);
  __atomic_fetch_add(&g_ready, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    int32_t gen = load(&g_generation);
    for (int32_t i = 0; gen == seen && i < g_spin; ++i) gen = load(&g_generation);
    while (gen == seen) {
      __atomic_add_fetch(&g_sleepers, 1, __ATOMIC_SEQ_CST);
      if (load(&g_generation) == seen) __builtin_wasm_memory_atomic_wait32(&g_generation, seen, -1);
      __atomic_sub_fetch(&g_sleepers, 1, __ATOMIC_SEQ_CST);
      gen = load(&g_generation);
    }
    seen = gen;
    // The launch now open (possibly a later one than `gen`, if this worker was slow): read its
    // number, then its job; run_tasks' claims check that the two belong together.
    const uint64_t word = __atomic_load_n(&g_claim, __ATOMIC_SEQ_CST);
    const Job job = g_job;
    const int32_t ran = run_tasks(static_cast<uint32_t>(word >> 32), job);
    if (ran > 0) __atomic_add_fetch(&g_worker_tasks, ran, __ATOMIC_SEQ_CST);
  }
}

/*! \brief Called by a worker's JS when hearth_thread_worker threw: the launcher stops waiting on it. */
EMSCRIPTEN_KEEPALIVE void hearth_threads_poison(void) { store(&g_poisoned, 1); }

/*! \brief Tasks the workers have run so far. */
EMSCRIPTEN_KEEPALIVE int32_t hearth_threads_worker_tasks(void) { return load(&g_worker_tasks); }

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
