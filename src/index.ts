/**
 * mapcontig's public API: the Machine, its in-kernel API, and the kernel's constants by name.
 */

export { buffer_layout, layout_from_pfns } from './contig/buffer_layout.ts';
export {
  type Collateral,
  type CollateralProbe,
  collateralProbe,
  type ProbeOptions,
} from './contig/collateral.ts';
export {
  type CompareOptions,
  type Comparison,
  type Contender,
  type ContenderResult,
  type ContigRequest,
  cloneCopies,
  compareContenders,
  contender,
  contenders,
  fragmentLikeAServer,
  registerContender,
  replayCopies,
} from './contig/compare.ts';
export { type DeviceReport, device_report, format_device_report } from './contig/device.ts';
export { DEVICE_PROFILES, type DeviceProfile, device_profile } from './contig/device_profiles.ts';
export { contigFallback, FALLBACK_RUNGS, type FallbackResult } from './contig/fallback.ts';
export { MAP_CONTIG_POLICIES, type MapContigPolicyName } from './contig/map_contig.ts';
export { physical_segments } from './contig/segments.ts';
export { type ErrnoCode, ErrnoError, errnos } from './lib/errno.ts';
export { parseSize } from './lib/size.ts';
export { type FragmentationSummary, fragmentationSummary, largestFreeRun } from './mm/fragmentation.ts';
export * from './mm/gfp.ts';
export {
  MAX_PAGE_ORDER,
  MIGRATE_CMA,
  MIGRATE_HIGHATOMIC,
  MIGRATE_ISOLATE,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  migratetype_names,
  PAGE_SIZE,
  pageblock_nr_pages,
  pageblock_order,
  ZONE_DMA,
  ZONE_DMA32,
  ZONE_MOVABLE,
  ZONE_NORMAL,
  zone_names,
} from './mm/mmzone.ts';
export { ACR_FLAGS_CMA, ACR_FLAGS_NONE } from './mm/page_alloc/contig.ts';
export type { PagePool } from './mm/page_pool.ts';
export { renderComparison, renderFallback } from './report/comparison.ts';
export { renderRunSummary, writeRunReport } from './report/run_report.ts';
export type { MachineConfig, MachineConfigInput } from './sim/config.ts';
export { type AllocWhere, type ContigWhere, KernelApi } from './sim/kernel.ts';
export { InvariantError, Machine } from './sim/machine.ts';
export { type CaptureOptions, type CaptureResult, captureSnapshot } from './snapshot/capture.ts';
export { decodeKpageflags, KPF, type KpageflagsLayout, kpfTest } from './snapshot/kpageflags.ts';
export { SnapshotError, type SnapshotManifest } from './snapshot/manifest.ts';
export { readSnapshot, type Snapshot } from './snapshot/read.ts';
export { FOLL_FORCE, FOLL_LONGTERM, FOLL_WRITE } from './vm/gup.ts';
export {
  FaultError,
  Process,
  RLIM_INFINITY,
  type Rlimits,
  type SpawnOptions,
  type Umem,
} from './vm/process.ts';
export * from './vm/uapi.ts';
export { createWorkload, runWorkloads, type WorkloadModel, WorkloadParamError } from './workload/models.ts';
export {
  type EventResult,
  type RunResult,
  runScenario,
  type Samples,
  scenarioUntil,
} from './workload/run.ts';
export { loadScenario, parseScenario, type Scenario, ScenarioError } from './workload/scenario.ts';
