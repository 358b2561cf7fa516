import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadScenario,
  parseScenario,
  registerWorkloadModel,
  ScenarioError,
  WORKLOAD_MODELS,
} from '../../src/workload/scenario.ts';

const MiB = 2 ** 20;
const HOUR = 3600e9;

/** The smallest valid scenario; each mistake below is one edit of it. */
const BASE = `name: t
machine:
  memory: 1G
phases:
  - name: a
    duration: 1h
`;

/** The one-line message parseScenario() throws for `text`. */
function error(text: string): string {
  try {
    parseScenario(text, 'x.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('the scenario was accepted');
}

describe('example scenarios', () => {
  const files = readdirSync('scenarios').filter((f) => f.endsWith('.yaml'));

  it('are all there', () => {
    expect(files.sort()).toEqual([
      'build-box.yaml',
      'camera-board.yaml',
      'database-host.yaml',
      'dpdk-hugepages.yaml',
      'kvm-host.yaml',
      'rdma-webserver.yaml',
      'thread-700m.yaml',
    ]);
  });

  it.each(files)('%s parses', (f) => {
    const s = loadScenario(join('scenarios', f));
    expect(s.name).toBe(f.replace(/\.yaml$/, ''));
    expect(s.phases.length).toBeGreaterThan(0);
  });

  it('the annotated example in docs/scenarios.md parses', () => {
    const doc = readFileSync('docs/scenarios.md', 'utf8');
    const example = /## An annotated example\n+```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    expect(parseScenario(example!, 'docs/scenarios.md').name).toBe('thread-700m');
  });

  it("thread-700m: the thread's request after a day on 8 GiB", () => {
    const s = loadScenario('scenarios/thread-700m.yaml');
    expect(s.machine).toMatchObject({ memory: '8G', seed: 2017 });
    expect(s.phases.reduce((t, p) => t + p.duration, 0)).toBe(24 * HOUR);
    expect(s.events.at(-1)).toEqual({
      at: 24 * HOUR,
      action: 'map_contig',
      bytes: 700 * MiB,
      uid: 1000,
      policy: 'rfc',
      best_effort: false,
    });
    expect(s.compare?.request).toEqual({ bytes: 700 * MiB, uid: 1000, devices: ['rdma-nic'] });
    expect(s.sample?.every).toBe(HOUR);
  });

  it('rdma-webserver: sysfs values become strings, defaults are filled in', () => {
    const s = loadScenario('scenarios/rdma-webserver.yaml');
    expect(s.sysfs['/proc/sys/vm/min_free_kbytes']).toBe('262144');
    expect(s.events.find((e) => e.action === 'nr_hugepages')).toEqual({
      at: 12 * HOUR,
      action: 'nr_hugepages',
      count: 512,
      size: 2 * MiB,
    });
    expect(s.compare?.policies).toContain('cma-heap');
  });
});

describe('defaults', () => {
  it('fills description, seed (also the machine seed), sysfs and events', () => {
    const s = parseScenario(BASE, 'x.yaml');
    expect(s).toEqual({
      name: 't',
      description: '',
      seed: 1,
      machine: { memory: '1G', seed: 1 },
      sysfs: {},
      phases: [{ name: 'a', duration: HOUR, workloads: [] }],
      events: [],
    });
  });

  it('keeps an explicit machine seed', () => {
    expect(parseScenario(`${BASE}seed: 5\n`.replace('1G', '1G\n  seed: 9'), 'x.yaml').machine.seed).toBe(9);
  });

  it('accepts a workload model registered later', () => {
    const text = `${BASE}    workloads:\n      - model: my-model\n        params: { x: 1 }\n`;
    expect(error(text)).toContain("unknown model 'my-model'");
    registerWorkloadModel('my-model');
    try {
      expect(parseScenario(text, 'x.yaml').phases[0].workloads).toEqual([
        { model: 'my-model', params: { x: 1 } },
      ]);
    } finally {
      WORKLOAD_MODELS.splice(WORKLOAD_MODELS.indexOf('my-model'), 1);
    }
  });

  it('checks policies against the list it is given', () => {
    const text = `${BASE}compare:\n  request: { bytes: 1G }\n  policies: [mine]\n`;
    expect(parseScenario(text, 'x.yaml', { policies: ['mine'] }).compare?.policies).toEqual(['mine']);
  });
});

describe('one clear message per kind of mistake', () => {
  it('YAML syntax', () => {
    expect(error('name: t\nmachine: [1\nphases: x\n')).toBe(
      'x.yaml:3:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
  });

  it('a key given twice', () => {
    expect(error(`${BASE}name: u\n`)).toBe('x.yaml:7:1: YAML syntax: Map keys must be unique');
  });

  it('empty file', () => {
    const msg = 'x.yaml:1:1: the file is empty (a scenario needs at least name, machine and phases)';
    expect(error('')).toBe(msg);
    expect(error('# only a comment\n')).toBe(msg);
  });

  it('not a mapping', () => {
    expect(error('- a\n')).toBe('x.yaml:1:1: (top level): expected a mapping, got a list');
  });

  it('unknown key, with a suggestion when close', () => {
    expect(error(`${BASE}evnts: []\n`)).toBe(
      "x.yaml:7:1: evnts: unknown key 'evnts' (did you mean 'events'?)",
    );
    expect(error(`${BASE}zzzzzz: 1\n`)).toBe(
      "x.yaml:7:1: zzzzzz: unknown key 'zzzzzz' (known: name, description, seed, machine, sysfs, phases, events, sample, compare)",
    );
    expect(error(`${BASE}events:\n  - { at: 1h, action: map_contig, bytes: 1G, best_efort: true }\n`)).toBe(
      "x.yaml:8:46: events[0].best_efort: unknown key 'best_efort' (did you mean 'best_effort'?)",
    );
  });

  it('wrong type', () => {
    expect(error(BASE.replace('name: t', 'name: [t]'))).toBe(
      'x.yaml:1:7: name: expected a string, got a list',
    );
    expect(error(`${BASE}seed: abc\n`)).toBe("x.yaml:7:7: seed: expected a number, got 'abc'");
    expect(error(`${BASE}sysfs:\n  /sys/x: [1]\n`)).toBe(
      "x.yaml:8:11: sysfs['/sys/x']: expected a string or a number, got a list",
    );
  });

  it('missing field', () => {
    expect(error('name: t\nmachine:\n  memory: 1G\n')).toBe('x.yaml:1:1: phases: is required');
    expect(error(BASE.replace('    duration: 1h\n', ''))).toBe('x.yaml:5:5: phases[0].duration: is required');
  });

  it('bad size', () => {
    expect(error(BASE.replace('1G', '12Q'))).toBe(
      "x.yaml:3:11: machine.memory: '12Q' is not a size (expected e.g. 4096, 700M, 64G)",
    );
  });

  it('bad duration', () => {
    expect(error(BASE.replace('1h', 'forever'))).toBe(
      "x.yaml:6:15: phases[0].duration: 'forever' is not a duration (expected e.g. 500ms, 1.5s, 24h)",
    );
    expect(error(BASE.replace('1h', '24'))).toBe(
      'x.yaml:6:15: phases[0].duration: 24 has no unit (expected e.g. 500ms, 1.5s, 24h)',
    );
  });

  it('bad machine field, found by the machine schema', () => {
    expect(error(BASE.replace('1G', '1G\n  nodes: 0'))).toBe(
      'x.yaml:4:10: machine.nodes: must be at least 1, got 0',
    );
    expect(error(BASE.replace('1G', '1G\n  node: 2'))).toBe(
      "x.yaml:4:3: machine.node: unknown key 'node' (did you mean 'nodes'?)",
    );
    expect(error(BASE.replace('1G', '1G\n  contig_devices:\n    - { name: contig0, mod: 0 }'))).toBe(
      "x.yaml:5:24: machine.contig_devices[0].mod: unknown key 'mod' (did you mean 'mode'?)",
    );
    expect(error(BASE.replace('1G', '1G\n  thp: sometimes'))).toBe(
      "x.yaml:4:8: machine.thp: unknown THP mode 'sometimes' (known: always, madvise, never)",
    );
  });

  it("bad machine field, found by parseMachineConfig()'s own checks", () => {
    expect(error(BASE.replace('1G', '32M'))).toBe('x.yaml:3:11: machine.memory: at least 64M is needed');
    expect(error(BASE.replace('1G', '1G\n  nodes: 2\n  cpus: 1'))).toBe(
      'x.yaml:5:9: machine.cpus: at least one CPU per node',
    );
  });

  it('unknown workload model', () => {
    expect(error(`${BASE}    workloads:\n      - model: anon-chrn\n`)).toBe(
      "x.yaml:8:16: phases[0].workloads[0].model: unknown model 'anon-chrn' (did you mean 'anon-churn'?)",
    );
  });

  it('unknown policy', () => {
    expect(error(`${BASE}compare:\n  request: { bytes: 1G }\n  policies: [rfc, hugtlb]\n`)).toBe(
      "x.yaml:9:19: compare.policies[1]: unknown policy 'hugtlb' (did you mean 'hugetlb'?)",
    );
  });

  it('bad sysfs path', () => {
    expect(error(`${BASE}sysfs:\n  /etc/passwd: 1\n`)).toBe(
      "x.yaml:8:3: sysfs['/etc/passwd']: '/etc/passwd' is not a file under /sys/ or /proc/sys/",
    );
    expect(error(`${BASE}events:\n  - { at: 1h, action: write, path: /dev/mem, value: 1 }\n`)).toBe(
      "x.yaml:8:36: events[0].path: '/dev/mem' is not a file under /sys/ or /proc/sys/",
    );
  });

  it('events out of order', () => {
    const text = `${BASE}events:\n  - { at: 30min, action: compact_memory }\n  - { at: 10min, action: compact_memory }\n`;
    expect(error(text)).toBe(
      "x.yaml:9:11: events[1].at: '10min' is earlier than the event before it; list events in time order",
    );
  });

  it('event beyond the phases', () => {
    expect(error(`${BASE}events:\n  - { at: 2h, action: compact_memory }\n`)).toBe(
      "x.yaml:8:11: events[0].at: '2h' is after the phases end (1h)",
    );
  });

  it('unknown or missing event action', () => {
    expect(error(`${BASE}events:\n  - { at: 1h, action: compact_mem }\n`)).toBe(
      "x.yaml:8:23: events[0].action: unknown action 'compact_mem' (did you mean 'compact_memory'?)",
    );
    expect(error(`${BASE}events:\n  - { at: 1h }\n`)).toBe(
      'x.yaml:8:5: events[0].action: is required (one of: map_contig, write, compact_memory, nr_hugepages, spawn, exit, open_device)',
    );
  });

  it('exit of a process never spawned', () => {
    expect(error(`${BASE}events:\n  - { at: 1h, action: exit, name: foo }\n`)).toBe(
      "x.yaml:8:35: events[0].name: no process 'foo' is running (spawn it in an earlier event)",
    );
  });

  it('bad huge page size', () => {
    expect(error(`${BASE}events:\n  - { at: 1h, action: nr_hugepages, count: 2, size: 4M }\n`)).toBe(
      "x.yaml:8:53: events[0].size: '4M' is not a huge page size (2M or 1G)",
    );
  });

  it('unknown vmstat counter', () => {
    expect(error(`${BASE}sample: { every: 1s, counters: [compact_stal] }\n`)).toBe(
      "x.yaml:7:33: sample.counters[0]: unknown vmstat counter 'compact_stal' (did you mean 'compact_stall'?)",
    );
  });

  it('the first mistake in the file is the one reported', () => {
    // seed (line 1) comes before machine.memory (line 3) in the file, after it in the schema.
    expect(error(`seed: x\n${BASE.replace('1G', '12Q')}`)).toBe(
      "x.yaml:1:7: seed: expected a number, got 'x'",
    );
  });

  it('unreadable file', () => {
    expect(() => loadScenario('scenarios/nope.yaml')).toThrow('scenarios/nope.yaml:1:1: cannot read: ENOENT');
  });
});
