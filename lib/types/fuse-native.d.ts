/** The part of fuse-native (2.2, untyped) that salvo uses. */
declare module 'fuse-native' {
  export interface Stat {
    mode: number;
    uid?: number;
    gid?: number;
    size: number;
    nlink?: number;
    blksize?: number;
    blocks?: number;
    atime: Date;
    mtime: Date;
    ctime: Date;
  }
  export interface Statfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid?: number;
    flag?: number;
    namemax: number;
  }
  type Done = (err: number) => void;
  export interface Operations {
    init?(cb: Done): void;
    getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
    fgetattr?(path: string, fd: number, cb: (err: number, stat?: Stat) => void): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: Stat[]) => void): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    flush?(path: string, fd: number, cb: Done): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Done): void;
    release?(path: string, fd: number, cb: Done): void;
    truncate?(path: string, size: number, cb: Done): void;
    ftruncate?(path: string, fd: number, size: number, cb: Done): void;
    /**
     * FUSE's fallocate (mode: FALLOC_FL_* bits, e.g. 3 = KEEP_SIZE|PUNCH_HOLE); bound only by the
     * binary scripts/build-fuse-native builds (native/fuse-native-fallocate.patch): see Fuse.FALLOCATE.
     */
    fallocate?(path: string, mode: number, offset: number, length: number, fd: number, cb: Done): void;
    statfs?(path: string, cb: (err: number, statfs?: Statfs) => void): void;
    utimens?(path: string, atime: Date, mtime: Date, cb: Done): void;
    chmod?(path: string, mode: number, cb: Done): void;
    chown?(path: string, uid: number, gid: number, cb: Done): void;
    create?(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
    unlink?(path: string, cb: Done): void;
    mkdir?(path: string, mode: number, cb: Done): void;
    rmdir?(path: string, cb: Done): void;
    rename?(src: string, dest: string, cb: Done): void;
    symlink?(src: string, dest: string, cb: Done): void;
  }
  export interface FuseOptions {
    displayFolder?: boolean;
    debug?: boolean;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    defaultPermissions?: boolean;
    timeout?: false | number;
    attrTimeout?: number;
    entryTimeout?: number;
    autoUnmount?: boolean;
  }
  export default class Fuse {
    constructor(mnt: string, ops: Operations, opts?: FuseOptions);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** True when the loaded binary binds fallocate (built from source with salvo's patch), so that ops.fallocate is called. */
    static FALLOCATE: boolean;
    static EPERM: number;
    static ENOENT: number;
    static EIO: number;
    static EBADF: number;
    static EACCES: number;
    static EBUSY: number;
    static EEXIST: number;
    static EINVAL: number;
    static EISDIR: number;
    static ENOSPC: number;
    static ENOMEM: number;
    static EMFILE: number;
    static EROFS: number;
    static EFBIG: number;
    static ENOTDIR: number;
    static EOPNOTSUPP: number;
  }
}
