/**
 * The files a mount shows, by path: what each path is (a directory and its entries, the live
 * image, a snapshot, a symlink to one, the control file), from the catalog of synch points as it
 * is now. A mount of an archive alone has no live image. The FUSE server (mount.ts) answers the
 * kernel from it.
 */
import type { Catalog } from '../volume/synch-point.js';
import { snapshotFileName, type SynchPoint } from '../volume/synch-point.js';

export type Node =
  | { kind: 'dir'; entries: () => string[] }
  | { kind: 'live' }
  | { kind: 'snapshot'; point: SynchPoint }
  | { kind: 'link'; target: string; point: SynchPoint }
  | { kind: 'control' };

export class MountTree {
  private byName = new Map<string, SynchPoint>();
  private byLabel = new Map<string, SynchPoint>();
  private indexed: readonly SynchPoint[] | null = null;
  private indexedPoints = -1;

  constructor(
    private readonly catalog: Catalog,
    /** Whether /live/volume.img is there (not in a mount of an archive alone). */
    private readonly live: boolean,
  ) {}

  /** The file at `path`, or null. The names follow the catalog: a point added since shows at once. */
  lookup(path: string): Node | null {
    this.index();
    switch (path) {
      case '/':
        return { kind: 'dir', entries: () => ['.salvo.json', ...(this.live ? ['live'] : []), 'snapshots'] };
      case '/.salvo.json':
        return { kind: 'control' };
      case '/live':
        return this.live ? { kind: 'dir', entries: () => ['volume.img'] } : null;
      case '/live/volume.img':
        return this.live ? { kind: 'live' } : null;
      case '/snapshots':
        return { kind: 'dir', entries: () => [...this.byName.keys(), ...(this.catalog.latest ? ['latest.img'] : []), 'by-label'] };
      case '/snapshots/by-label':
        return { kind: 'dir', entries: () => [...this.byLabel.keys()] };
      case '/snapshots/latest.img': {
        const latest = this.catalog.latest;
        return latest ? { kind: 'link', target: snapshotFileName(latest), point: latest } : null;
      }
    }
    if (path.startsWith('/snapshots/by-label/')) {
      const point = this.byLabel.get(path.slice('/snapshots/by-label/'.length));
      return point ? { kind: 'link', target: `../${snapshotFileName(point)}`, point } : null;
    }
    if (path.startsWith('/snapshots/')) {
      const point = this.byName.get(path.slice('/snapshots/'.length));
      return point ? { kind: 'snapshot', point } : null;
    }
    return null;
  }

  /** The names of the points, rebuilt only when the catalog changed: it grew, or a retention record hid points. */
  private index(): void {
    const points = this.catalog.all;
    if (points === this.indexed && points.length === this.indexedPoints) return;
    this.byName = new Map(points.map((p) => [snapshotFileName(p), p]));
    this.byLabel = new Map(points.filter((p) => p.label).map((p) => [`${p.label}.img`, p]));
    this.indexed = points;
    this.indexedPoints = points.length;
  }
}
