/**
 * Our /proc output is deterministic and stays what it was: the same configuration and seed give
 * the same bytes, recorded in test/golden/*.txt (UPDATE_GOLDEN=1 rewrites them). Covers the
 * real machine's configuration, a CMA kernel's pagetypeinfo, and a two-node machine.
 */
import { describe, expect, it } from 'vitest';
import type { MachineConfigInput } from '../../src/sim/config.ts';
import { Machine } from '../../src/sim/machine.ts';
import { VM_SYSCTLS } from './format.ts';
import { expectGolden } from './golden.ts';

const FC_24G: MachineConfigInput = { memory: '24G', cpus: 2, kernel: { CMA: false }, seed: 1 };
const FILES = ['pagetypeinfo', 'zoneinfo', 'vmstat', 'meminfo'];
const SYSCTLS = [...VM_SYSCTLS].sort();

/** Every sysctl as `name: value` lines, the value's tabs and newline kept visible. */
function sysctlDump(m: Machine): string {
  return SYSCTLS.map((n) => `${n}: ${JSON.stringify(m.readFile(`/proc/sys/vm/${n}`))}\n`).join('');
}

describe('golden /proc output, 24 GiB 2-CPU machine without CMA', () => {
  const m = Machine.boot(FC_24G);
  for (const f of FILES) {
    it(f, () => expectGolden(f, m.readFile(`/proc/${f}`)));
  }
  it('sysctls', () => expectGolden('sysctl_vm', sysctlDump(m)));

  it('a second boot with the same seed prints the same bytes', () => {
    const again = Machine.boot(FC_24G);
    for (const f of FILES) expect(again.readFile(`/proc/${f}`)).toBe(m.readFile(`/proc/${f}`));
    expect(sysctlDump(again)).toBe(sysctlDump(m));
  });
});

describe('golden /proc output, other kernels and layouts', () => {
  it('pagetypeinfo with CONFIG_CMA', () => {
    const m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: true }, seed: 1 });
    expectGolden('pagetypeinfo-cma', m.readFile('/proc/pagetypeinfo'));
  });

  it('zoneinfo and pagetypeinfo of a two-node machine', () => {
    const m = Machine.boot({ memory: '8G', nodes: 2, cpus: 4, seed: 1 });
    expectGolden('zoneinfo-numa2', m.readFile('/proc/zoneinfo'));
    expectGolden('pagetypeinfo-numa2', m.readFile('/proc/pagetypeinfo'));
  });
});
