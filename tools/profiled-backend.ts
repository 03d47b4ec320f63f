/**
 * A Backend wrapper for the profiling tools (bench-profile, bench-batch-profile): every op call is
 * timed, wall and process CPU, into a table keyed by op name (and matmul shape).
 */
import type { Backend } from '../src/backend/types.js';

export interface OpTime {
  calls: number;
  wall: number;
  cpu: number;
}

export interface ProfileOptions {
  /** Ops to hide, so the model falls back to the separate ops they fuse (e.g. 'layer'). */
  hide?: readonly string[];
  /** A prefix for the table key, such as the phase ('prefill', 'decode'). */
  label?: () => string;
  /** Time only while this returns true (other calls pass straight through). */
  enabled?: () => boolean;
}

export function profiledBackend(be: Backend, table: Map<string, OpTime>, options: ProfileOptions = {}): Backend {
  const hide = new Set(options.hide ?? []);
  return new Proxy(be, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop === 'string' && hide.has(prop)) return undefined;
      if (typeof v !== 'function' || prop === 'createKVCache' || prop === 'loadMatrix') return v;
      const fn = v as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (options.enabled !== undefined && !options.enabled()) return fn.apply(target, args);
        const shape = prop === 'matmul' ? ` ${(args[0] as { rows: number }).rows}x${(args[0] as { cols: number }).cols}` : '';
        const key = `${options.label !== undefined ? `${options.label()} ` : ''}${String(prop)}${shape}`;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const r = fn.apply(target, args);
        const dt = performance.now() - t0;
        const c = process.cpuUsage(c0);
        const a = table.get(key) ?? { calls: 0, wall: 0, cpu: 0 };
        a.calls++;
        a.wall += dt;
        a.cpu += (c.user + c.system) / 1000;
        table.set(key, a);
        return r;
      };
    },
  });
}
