/**
 * The virtual-memory side of a machine: every address space, VMA, anon_vma and page table, and
 * the vm sysctls that govern them.
 */
import type { MM } from '../mm/mm.ts';
import { AnonVmas } from './anon_vma.ts';
import { MmStruct } from './mm_struct.ts';
import { PageTables } from './pgtable.ts';
import { VmaTable } from './vma.ts';

export interface VmSysctls {
  /** vm.max_map_count: DEFAULT_MAX_MAP_COUNT = 65530. */
  max_map_count: number;
  /** vm.mmap_min_addr: 65536 on x86-64 distributions (CONFIG_DEFAULT_MMAP_MIN_ADDR). */
  mmap_min_addr: number;
}

export class Vm {
  readonly vmas = new VmaTable();
  readonly anon = new AnonVmas();
  readonly pt: PageTables;
  readonly mms: Array<MmStruct | undefined> = [];
  readonly sysctl: VmSysctls = { max_map_count: 65530, mmap_min_addr: 65536 };

  constructor(readonly mm: MM) {
    this.pt = new PageTables(mm);
  }

  /** mm_alloc() + pgd_alloc(): a new, empty address space; null if no page for the PGD. */
  mm_alloc(nid: number, cpu: number): MmStruct | null {
    const id = this.mms.length;
    const mm = new MmStruct(id, nid, cpu);
    mm.pgd = this.pt.alloc(id, nid, cpu);
    if (mm.pgd < 0) return null;
    this.mms.push(mm);
    return mm;
  }
}
