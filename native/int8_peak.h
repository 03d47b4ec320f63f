/* The int8 dot-product ceiling of this machine (int8_peak.c). */
#ifndef CHATGLM_INT8_PEAK_H
#define CHATGLM_INT8_PEAK_H

/* Names of the loops this CPU can run (at most max), best ISA first; returns how many. */
int cg_int8_peak_kinds(const char **names, int max);
/* Ops per second (multiply and add counted apart) of `threads` threads each running `iters`
 * iterations of the named loop; -1 for an unknown or unsupported name or bad arguments. */
double cg_int8_peak(const char *kind, int threads, long iters);

#endif
