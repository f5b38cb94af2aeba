"""A tiny bootable guest built at test time from Debian packages.

Not a test module: functional tests import build_tiny_guest() to get a
kernel, an initramfs and a small raw disk image, all cached on disk.

- kernel: boot/vmlinuz-* of the newest linux-image-*-cloud-amd64 package
  apt knows (downloaded with `apt-get download`, unpacked with dpkg-deb);
- initramfs: a gzip'd newc cpio written by this module (no cpio tool and no
  root needed: device nodes are just header fields), holding a static
  busybox, the few kernel modules needed to read a config drive and see the
  ACPI power button, and an /init that
    * prints `TINY-GUEST-BOOTED <dmi product uuid>` on /dev/ttyS0,
    * powers off on the ACPI power button (printing TINY-GUEST-STOPPING),
      so libvirt's graceful shutdown and soft reboot work,
    * mounts the config drive (label config-2, else cidata) and prints
      `USER-DATA: <first line of user data>`,
    * powers off by itself when the user data contains the word poweroff,
      and otherwise stays up;
- disk: a 16 MiB ext4 image (zeros if mkfs.ext4 is missing): the "machine
  image" users upload; nothing boots from it.

Results are cached in `cache_dir/<kernel version>-<recipe hash>/`, built in
a temporary directory beside it and renamed into place, so a concurrent or
failed build never leaves a half-built entry and a second call only costs
the apt-cache look-up.
"""
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import tempfile

DEFAULT_CACHE_DIR = '/var/cache/objstore-test/tiny-guest'
MARKER = 'TINY-GUEST-BOOTED'
STOPPING = 'TINY-GUEST-STOPPING'
USER_DATA_PREFIX = 'USER-DATA: '
CMDLINE = 'console=ttyS0 quiet'
DISK_MB = 16
# Modules for a config drive on libvirt's x86 CD-ROM (SATA, i.e. AHCI) or
# an IDE one, ISO 9660, and the power button as an input event device.
WANTED_MODULES = ('button', 'evdev', 'ahci', 'ata_piix', 'sr_mod', 'isofs')
_KERNEL_PKG_RE = re.compile(r'^linux-image-(\d[^\s]*)-cloud-amd64$')

INIT_SCRIPT = r'''#!/bin/busybox sh
# /init of the tiny test guest (see test/functional/tiny_guest.py)
/bin/busybox mkdir -p /proc /sys /dev /mnt /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "$*" > /dev/ttyS0; }
say "@MARKER@ $(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
stop() { say "@STOPPING@"; sync; poweroff -f; }
for m in @MODULES@; do insmod /lib/modules/$m.ko 2>/dev/null; done
# The power button: libvirt's graceful shutdown presses it.
for ev in /sys/class/input/event*; do
    if [ "$(cat $ev/device/name 2>/dev/null)" = "Power Button" ]; then
        # evdev refuses reads shorter than one event (24 bytes on x86_64)
        ( dd if=/dev/input/${ev##*/} of=/dev/null bs=24 count=1 2>/dev/null \
          && stop ) &
    fi
done
dev=""
i=0
while [ -z "$dev" ] && [ $i -lt 50 ]; do
    dev=$(findfs LABEL=config-2 2>/dev/null || findfs LABEL=cidata 2>/dev/null)
    [ -z "$dev" ] && [ -b /dev/sr0 ] && dev=/dev/sr0
    [ -z "$dev" ] && { sleep 0.2; i=$((i + 1)); }
done
if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /mnt 2>/dev/null; then
    ud=""
    for f in /mnt/openstack/latest/user_data /mnt/user-data; do
        [ -f "$f" ] && { ud="$f"; break; }
    done
    if [ -n "$ud" ]; then
        say "@USER_DATA@$(head -n 1 "$ud")"
        grep -qw poweroff "$ud" && stop
    else
        say "NO-USER-DATA"
    fi
else
    say "NO-CONFIG-DRIVE"
fi
while true; do sleep 3600; done
'''


def render_init(modules):
    """The /init script text with markers and module load order filled in.
    """
    return (INIT_SCRIPT.replace('@MARKER@', MARKER)
            .replace('@STOPPING@', STOPPING)
            .replace('@USER_DATA@', USER_DATA_PREFIX)
            .replace('@MODULES@', ' '.join(modules)))


# -- newc cpio ---------------------------------------------------------------

class CpioWriter:
    """Minimal 'newc' (SVR4, no CRC) archive writer, as the kernel's
    initramfs unpacker reads it. Owner is always root."""

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.ino = 1

    def _entry(self, name, mode, data=b'', rdev=(0, 0), nlink=1):
        name_bytes = name.encode() + b'\0'
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(name_bytes), 0]
        self.ino += 1
        header = b'070701' + b''.join(b'%08X' % f for f in fields)
        self.fileobj.write(header + name_bytes)
        self._pad(len(header) + len(name_bytes))
        self.fileobj.write(data)
        self._pad(len(data))

    def _pad(self, length):
        self.fileobj.write(b'\0' * (-length % 4))

    def add_dir(self, name, perm=0o755):
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def add_file(self, name, data, perm=0o644):
        self._entry(name, stat.S_IFREG | perm, data)

    def add_symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name, major, minor, perm=0o600):
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def close(self):
        self._entry('TRAILER!!!', 0, nlink=1)


def build_initramfs(busybox, modules, init_text):
    """Return the gzip'd cpio bytes. `modules` is [(name, ko bytes)] in
    load order.

    /dev/console is in the archive because the kernel opens it for init's
    stdin/stdout before /init runs (and before devtmpfs is mounted).
    """
    raw = io.BytesIO()
    cpio = CpioWriter(raw)
    for directory in ('bin', 'dev', 'lib', 'lib/modules', 'mnt', 'proc',
                      'sys'):
        cpio.add_dir(directory)
    cpio.add_chardev('dev/console', 5, 1)
    cpio.add_file('bin/busybox', busybox, 0o755)
    cpio.add_symlink('bin/sh', 'busybox')
    for name, data in modules:
        cpio.add_file('lib/modules/%s.ko' % name, data)
    cpio.add_file('init', init_text.encode(), 0o755)
    cpio.close()
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


# -- kernel modules ------------------------------------------------------

def _module_bytes(path):
    with open(path, 'rb') as handle:
        data = handle.read()
    if path.endswith('.xz'):
        data = lzma.decompress(data)   # busybox insmod wants plain ELF
    return data


def _module_name(path):
    return os.path.basename(path).split('.ko')[0].replace('-', '_')


def module_depends(data):
    """The depends= list from a module's .modinfo section."""
    match = re.search(rb'(?:^|\0)depends=([^\0]*)\0', data)
    if not match or not match.group(1):
        return []
    return [d.replace('-', '_') for d in match.group(1).decode().split(',')]


def resolve_modules(module_dir, wanted=WANTED_MODULES):
    """[(name, bytes)] of `wanted` plus their dependencies, dependencies
    first. Wanted modules missing from the package (built in) are skipped.
    """
    paths = {}
    for root, _dirs, files in os.walk(module_dir):
        for filename in files:
            if '.ko' in filename:
                paths[_module_name(filename)] = os.path.join(root, filename)
    ordered, seen = [], set()

    def visit(name):
        if name in seen or name not in paths:
            return
        seen.add(name)
        data = _module_bytes(paths[name])
        for dep in module_depends(data):
            visit(dep)
        ordered.append((name, data))

    for name in wanted:
        visit(name)
    return ordered


# -- packages ------------------------------------------------------------

def _version_key(version):
    """Natural order: 6.12.117+deb12 > 6.1.0-56 > 6.1.0-9."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.findall(r'\d+|[^\d]+', version)]


def kernel_packages(run=subprocess.run):
    """Installable linux-image-*-cloud-amd64 package names, newest first
    (no metapackages, -dbg or -unsigned variants)."""
    result = run(['apt-cache', 'pkgnames', 'linux-image-'],
                 capture_output=True, text=True, check=True)
    found = []
    for name in result.stdout.split():
        match = _KERNEL_PKG_RE.match(name)
        # a metapackage like linux-image-6.12-cloud-amd64 has no ABI part
        if match and re.search(r'\d+\.\d+\.\d+', match.group(1)):
            found.append((_version_key(match.group(1)), name))
    return [name for _key, name in sorted(found, reverse=True)]


def _apt_download(package, directory):
    """Fetch one .deb into `directory`; return its path."""
    result = subprocess.run(['apt-get', 'download', '-q', package],
                            cwd=directory, capture_output=True, text=True,
                            check=False)
    debs = [f for f in os.listdir(directory)
            if f.startswith(package + '_') and f.endswith('.deb')]
    if result.returncode != 0 or not debs:
        raise RuntimeError('apt-get download %s failed: %s'
                           % (package, result.stderr.strip()))
    return os.path.join(directory, debs[0])


def _unpack(deb, directory):
    subprocess.run(['dpkg-deb', '-x', deb, directory], check=True)


def _busybox(workdir):
    """The installed static busybox, else one unpacked from its .deb."""
    for path in ('/bin/busybox', '/usr/bin/busybox'):
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                return handle.read()
    deb = _apt_download('busybox-static', workdir)
    _unpack(deb, os.path.join(workdir, 'busybox'))
    with open(os.path.join(workdir, 'busybox', 'bin', 'busybox'),
              'rb') as handle:
        return handle.read()


def make_disk(path, size_mb=DISK_MB):
    """A raw ext4 image holding one file; zeros when mkfs.ext4 is absent.
    """
    with open(path, 'wb') as handle:
        handle.truncate(size_mb * 1024 * 1024)
    mkfs = shutil.which('mkfs.ext4') or shutil.which('mkfs.ext4',
                                                     path='/sbin:/usr/sbin')
    if not mkfs:
        return
    content = tempfile.mkdtemp()
    try:
        with open(os.path.join(content, 'README'), 'w') as handle:
            handle.write('tiny test guest disk\n')
        subprocess.run([mkfs, '-q', '-F', '-L', 'tiny-root', '-d', content,
                        path], check=True, capture_output=True)
    finally:
        shutil.rmtree(content, ignore_errors=True)


# -- the cache -----------------------------------------------------------

def recipe_hash():
    """Changes to the init script or module list rebuild the cache."""
    text = INIT_SCRIPT + ' '.join(WANTED_MODULES) + CMDLINE
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _entry_paths(entry):
    return {'kernel': os.path.join(entry, 'vmlinuz'),
            'initramfs': os.path.join(entry, 'initramfs.gz'),
            'disk': os.path.join(entry, 'disk.raw')}


def _build_entry(package, tmp):
    """Download, unpack and assemble everything for `package` in `tmp`."""
    work = os.path.join(tmp, 'work')
    os.mkdir(work)
    _unpack(_apt_download(package, work), os.path.join(work, 'kernel'))
    boot = os.path.join(work, 'kernel', 'boot')
    vmlinuz = [f for f in os.listdir(boot) if f.startswith('vmlinuz-')]
    if not vmlinuz:
        raise RuntimeError('%s holds no boot/vmlinuz-*' % package)
    paths = _entry_paths(tmp)
    shutil.copyfile(os.path.join(boot, vmlinuz[0]), paths['kernel'])
    modules = resolve_modules(os.path.join(work, 'kernel', 'lib',
                                           'modules'))
    init = render_init([name for name, _data in modules])
    with open(paths['initramfs'], 'wb') as handle:
        handle.write(build_initramfs(_busybox(work), modules, init))
    make_disk(paths['disk'])
    shutil.rmtree(work)


def default_cache_dir():
    return os.environ.get('OBJSTORE_TEST_CACHE') or DEFAULT_CACHE_DIR


def _cached_or_built(cache_dir, package):
    """The cache entry for `package`, built first if it is not there."""
    version = _KERNEL_PKG_RE.match(package).group(1)
    entry = os.path.join(cache_dir, '%s-%s' % (version, recipe_hash()))
    if os.path.isdir(entry):
        return entry, version
    tmp = tempfile.mkdtemp(prefix='.build-', dir=cache_dir)
    try:
        _build_entry(package, tmp)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, entry)
        except OSError:
            if not os.path.isdir(entry):  # not lost to a racing build
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry, version


def build_tiny_guest(cache_dir=None, tries=3):
    """Return dict(kernel=, initramfs=, disk=, cmdline=, version=) of the
    tiny guest, building it on the first call for the newest cloud kernel.

    apt may name a package it can no longer fetch (stale lists), so the
    next newest are tried, up to `tries` packages. Raises RuntimeError
    when no kernel package can be found or fetched.
    """
    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    packages = kernel_packages()
    if not packages:
        raise RuntimeError('apt knows no linux-image-*-cloud-amd64 package '
                           '(run apt-get update?)')
    errors = []
    for package in packages[:tries]:
        try:
            entry, version = _cached_or_built(cache_dir, package)
        except RuntimeError as err:
            errors.append(str(err))
            continue
        result = _entry_paths(entry)
        result.update(cmdline=CMDLINE, version=version)
        return result
    raise RuntimeError('no tiny guest could be built: %s'
                       % '; '.join(errors))
