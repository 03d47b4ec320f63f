/*
 * Thread pool with one dispatch per op. A decode step runs a few hundred ops, so dispatch must cost
 * microseconds: the caller bumps a generation counter (under the mutex only to avoid lost wake-ups),
 * workers that are still spinning see it at once, and only workers that went to sleep after ~50 us
 * idle need the condition variable. Completion is an atomic counter the caller spins on.
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

#define SPIN_ITERS 20000

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
  _Atomic int done;
  _Atomic int stop;
  pool_task_fn fn;
  void *ctx;
};

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
    seen = atomic_load_explicit(&p->gen, memory_order_acquire);
    p->fn(p->ctx, w->tid, p->nthreads);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
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
  atomic_init(&p->done, 0);
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

void pool_run(pool_t *p, pool_task_fn fn, void *ctx) {
  if (p->nthreads == 1) {
    fn(ctx, 0, 1);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  fn(ctx, 0, p->nthreads);
  const int want = p->nthreads - 1;
  int spins = 0;
  while (atomic_load_explicit(&p->done, memory_order_acquire) < want) {
    cpu_relax();
    /* On an oversubscribed machine a worker may be descheduled: give it the core. */
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
