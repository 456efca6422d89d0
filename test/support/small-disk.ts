/**
 * Small real filesystems for what a full or failing disk does (root only: they are mounts). A tmpfs of a few
 * hundred KiB fills for real; an ext4 image on a loop device can be shut down (EXT4_IOC_SHUTDOWN), after
 * which every read and write returns EIO, as a disk that went away does.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

export const canMount = process.getuid?.() === 0;

export interface SmallDisk {
  dir: string;
  /** Takes `bytes` of the space with a file of its own; `free()` gives them back. */
  fill(bytes: number): { free(): void };
  /** ext4 only: from now on every I/O on it fails with EIO. */
  shutdown(): void;
  remove(): void;
}

export function smallTmpfs(kib: number): SmallDisk {
  const dir = mkdtempSync(path.join(tmpdir(), 'pod-responder-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', dir]);
  return disk(
    dir,
    () => {
      throw new Error('a tmpfs cannot be shut down');
    },
    () => {},
  );
}

export function ext4Loop(mib: number): SmallDisk {
  const work = mkdtempSync(path.join(tmpdir(), 'pod-responder-disk-'));
  const image = path.join(work, 'disk.img');
  const dir = path.join(work, 'mnt');
  execFileSync('truncate', ['-s', `${mib}M`, image]);
  execFileSync('mkfs.ext4', ['-q', image]);
  execFileSync('mkdir', [dir]);
  execFileSync('mount', ['-o', 'loop', image, dir]);
  return disk(
    dir,
    () => {
      // EXT4_IOC_SHUTDOWN (_IOR('X', 125, __u32)) with EXT4_GOING_FLAGS_NOLOGFLUSH: node has no ioctl, python does.
      execFileSync('python3', [
        '-c',
        'import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); fcntl.ioctl(fd, 0x8004587D, (2).to_bytes(4, "little"))',
        dir,
      ]);
    },
    () => rmSync(work, { recursive: true, force: true }),
  );
}

function disk(dir: string, shutdown: () => void, after: () => void): SmallDisk {
  return {
    dir,
    fill(bytes) {
      const file = path.join(dir, `filler-${Math.random().toString(36).slice(2)}`);
      const fd = openSync(file, 'w');
      try {
        writeFileSync(fd, Buffer.alloc(bytes, 1));
      } catch {
        // as much as fits
      } finally {
        closeSync(fd);
      }
      return { free: () => rmSync(file, { force: true }) };
    },
    shutdown,
    remove() {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
      after();
    },
  };
}
