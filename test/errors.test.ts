import t from 'tap';
import { VolumeError, asResourceLimit } from '../lib/errors.js';
import { toErrno } from '../lib/fuse/errno.js';

const systemError = (code: string) => Object.assign(new Error(`${code}: failed, open '/v/slots/0001.slot'`), { code });

t.test('errors: memory and descriptors run out are RESOURCE_LIMIT with what to do, never damage', async (t) => {
  const memory = asResourceLimit(new RangeError('Array buffer allocation failed'));
  t.equal(memory?.code, 'RESOURCE_LIMIT');
  t.match(memory?.message, /out of memory: Array buffer allocation failed/);
  t.match(memory?.hint, /more memory/);
  t.equal(asResourceLimit(systemError('ENOMEM'))?.code, 'RESOURCE_LIMIT');
  const files = asResourceLimit(systemError('EMFILE'));
  t.match(files?.message, /too many open files: EMFILE/);
  t.match(files?.hint, /ulimit -n/);
  t.equal(asResourceLimit(systemError('ENFILE'))?.code, 'RESOURCE_LIMIT');
  t.equal(asResourceLimit(systemError('EIO')), null, 'an I/O error is not a limit');
  t.equal(asResourceLimit(new RangeError('Invalid array length')), null, 'nor a bug');
  t.equal(asResourceLimit(new VolumeError('CORRUPT_BLOCK', 'x')), null);
});

t.test('errors: the mount answers ENOMEM or EMFILE for them, and says why', async (t) => {
  const reports: string[] = [];
  t.equal(toErrno(new RangeError('Array buffer allocation failed'), 'read /snapshots/x.img', (m) => reports.push(m)), -12);
  t.equal(toErrno(systemError('EMFILE'), 'write /live/volume.img', (m) => reports.push(m)), -24);
  t.match(reports[0], /read \/snapshots\/x.img: RESOURCE_LIMIT: out of memory/);
  t.match(reports[1], /ulimit -n/);
  const named = new VolumeError('RESOURCE_LIMIT', "segment slot /v/slots/0001.slot cannot be opened: this process's limit of open files is reached (EMFILE)", {
    cause: systemError('EMFILE'),
    hint: 'raise the limit of open files (ulimit -n; LimitNOFILE= in a systemd unit)',
  });
  t.equal(toErrno(named, 'read /live/volume.img', (m) => reports.push(m)), -24, 'a slot file the engine could not open: EMFILE too, not EIO');
  t.match(reports[2], /read \/live\/volume.img: RESOURCE_LIMIT: segment slot .* — raise the limit of open files/);
});
