/**
 * /proc/vmallocinfo (mm/vmalloc.c vmalloc_info_show; mode 0400): one line per busy vmalloc area,
 * vmap node by vmap node and by address within a node, as 6.18 walks vmap_nodes[i].busy:
 *
 *   0x%pK-0x%pK %7ld %pS pages=%d vmalloc vpages N0=.. N1=..
 *   start end size(with the guard page) caller nr_pages [flags] [page array vmalloc'ed] per node
 *
 * Addresses print as root sees them with kptr_restrict=1 (CAP_SYSLOG): the real address, 16 hex
 * digits. The caller is the name the allocator was given (%pS would add +off/size). The N<nid>=
 * counts (CONFIG_NUMA only) add 1 << page_order per head page, for nodes with memory. Lazily
 * freed "unpurged vm_area" lines never appear: the model purges at once (src/mm/vmalloc.ts).
 */
import type { MM } from '../../mm/mm.ts';
import {
  is_vmalloc_addr,
  VM_ALLOC,
  VM_DMA_COHERENT,
  VM_IOREMAP,
  VM_MAP,
  VM_SPARSE,
  VM_UNINITIALIZED,
  VM_USERMAP,
  type VmStruct,
  vmap_node_id,
} from '../../mm/vmalloc.ts';
import { lu_w } from '../seq_file.ts';

/** %px / %pK of a kernel address: 16 hex digits. */
function ptr(addr: number): string {
  return addr.toString(16).padStart(16, '0');
}

// kernel: mm/vmalloc.c show_numa_info()
function show_numa_info(mm: MM, v: VmStruct, counters: Float64Array): string {
  counters.fill(0);
  const step = 1 << v.page_order;
  for (let nr = 0; nr < v.nr_pages; nr += step) counters[mm.page_zone(v.pages[nr])!.nid] += step;
  let out = '';
  for (let nid = 0; nid < counters.length; nid++) if (counters[nid]) out += ` N${nid}=${counters[nid]}`;
  return out;
}

// kernel: mm/vmalloc.c vmalloc_info_show()
/** The text of /proc/vmallocinfo. */
export function vmallocinfo(mm: MM): string {
  const busy = mm.vmalloc.busy;
  // for_each_vmap_node(): each node's busy list is address-sorted, as `busy` is.
  const order = busy
    .map((v, i) => ({ v, node: vmap_node_id(mm, v), i }))
    .sort((a, b) => a.node - b.node || a.i - b.i);
  const counters = mm.config.NUMA ? new Float64Array(mm.nodes.length) : null;
  let out = '';
  for (const { v } of order) {
    if (v.flags & VM_UNINITIALIZED) continue;
    out += `0x${ptr(v.addr)}-0x${ptr(v.addr + v.size)} ${lu_w(v.size, 7)}`;
    if (v.caller) out += ` ${v.caller}`;
    if (v.nr_pages) out += ` pages=${v.nr_pages}`;
    if (v.flags & VM_IOREMAP) out += ' ioremap';
    if (v.flags & VM_SPARSE) out += ' sparse';
    if (v.flags & VM_ALLOC) out += ' vmalloc';
    if (v.flags & VM_MAP) out += ' vmap';
    if (v.flags & VM_USERMAP) out += ' user';
    if (v.flags & VM_DMA_COHERENT) out += ' dma-coherent';
    if (is_vmalloc_addr(v.pages_addr)) out += ' vpages';
    if (counters) out += show_numa_info(mm, v, counters);
    out += '\n';
  }
  return out;
}
