/*
 * Thread pool with one dispatch per op (a decode step runs a few hundred ops, so dispatch must cost
 * microseconds, and no thread is ever created per op).
 *
 * Dispatch: the caller publishes the job and bumps a generation counter (under the mutex only so a
 * sleeping worker cannot miss it); workers that are still spinning see it at once, workers asleep
 * after ~100 us idle are woken by the condition variable. Chunks are claimed from an atomic counter
 * and the caller claims too. When the caller finds no chunk left it closes the job and waits only
 * for workers that are inside it (`active`); a worker that arrives after the close skips the job.
 * The close/join handshake is a Dekker pair on seq_cst atomics: either the caller sees the worker's
 * `active` increment and waits for it, or the worker sees the close and never touches the job.
 */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_ITERS 4000

struct worker {
  pool_t *pool;
  int tid;
  pthread_t thread;
};

struct pool {
  int nthreads;
  struct worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  _Atomic unsigned long gen;
  _Atomic unsigned long closed;
  _Atomic int active;
  _Atomic int next_chunk;
  _Atomic int stop;
  int nchunks;
  pool_task_fn fn;
  void *ctx;
};

static void work(pool_t *p, int tid) {
  for (;;) {
    const int c = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed);
    if (c >= p->nchunks) break;
    p->fn(p->ctx, c, tid);
  }
}

static void *worker_main(void *arg) {
  struct worker *w = (struct worker *)arg;
  pool_t *p = w->pool;
  unsigned long seen = 0;
  for (;;) {
    int spins = 0;
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && spins < SPIN_ITERS) {
      cpu_relax();
      spins++;
    }
    if (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
      pthread_mutex_lock(&p->mu);
      while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(&p->stop)) break;
    seen = atomic_load(&p->gen);
    atomic_fetch_add(&p->active, 1);
    if (atomic_load(&p->closed) != seen) work(p, w->tid);
    atomic_fetch_sub(&p->active, 1);
  }
  return NULL;
}

pool_t *pool_create(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  pool_t *p = (pool_t *)calloc(1, sizeof(pool_t));
  if (!p) return NULL;
  p->nthreads = nthreads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  atomic_init(&p->gen, 0);
  atomic_init(&p->closed, 0);
  atomic_init(&p->active, 0);
  atomic_init(&p->next_chunk, 0);
  atomic_init(&p->stop, 0);
  p->workers = (struct worker *)calloc((size_t)nthreads, sizeof(struct worker));
  for (int i = 1; i < nthreads; i++) {
    p->workers[i].pool = p;
    p->workers[i].tid = i;
    if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
      /* Run with the threads we got rather than fail. */
      p->nthreads = i;
      break;
    }
  }
  return p;
}

int pool_threads(const pool_t *p) { return p->nthreads; }

void pool_run(pool_t *p, pool_task_fn fn, void *ctx, int nchunks) {
  if (nchunks <= 0) return;
  if (p->nthreads == 1 || nchunks == 1) {
    for (int c = 0; c < nchunks; c++) fn(ctx, c, 0);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  p->nchunks = nchunks;
  atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
  pthread_mutex_lock(&p->mu);
  const unsigned long g = atomic_fetch_add(&p->gen, 1) + 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  work(p, 0);
  atomic_store(&p->closed, g);
  int spins = 0;
  while (atomic_load(&p->active) > 0) {
    cpu_relax();
    /* A worker inside the job was descheduled mid-chunk: let it have the core. */
    if (++spins > SPIN_ITERS) {
      sched_yield();
      spins = 0;
    }
  }
}

void pool_destroy(pool_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->gen, 1);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i < p->nthreads; i++) pthread_join(p->workers[i].thread, NULL);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p->workers);
  free(p);
}
