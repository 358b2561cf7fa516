/**
 * Run by capture.test.ts in a child process as an unprivileged user: capture into argv[2] with
 * kpageflags requested, and print the manifest, so the reduced set is what a real non-root
 * capture gets rather than a simulation of it.
 */
import { captureSnapshot } from '../../src/snapshot/capture.ts';

const r = await captureSnapshot(process.argv[2], {});
process.stdout.write(JSON.stringify(r.manifest));
